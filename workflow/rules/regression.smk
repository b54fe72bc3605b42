# Rules of the 'regression' step.
