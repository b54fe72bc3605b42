# Rules of the 'stats' step.
