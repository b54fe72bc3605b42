# Rules of the 'triplets' step.
