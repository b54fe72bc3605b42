# Rules of the 'split' step.
