# Rules of the 'baseline' step.
