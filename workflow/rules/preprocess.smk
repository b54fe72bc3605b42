# Rules of the 'preprocess' step.
