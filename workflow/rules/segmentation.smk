# Rules of the 'segmentation' step.
