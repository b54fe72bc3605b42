# Rules of the 'measure' step.
