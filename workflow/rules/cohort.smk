# Rules of the 'cohort' step.
