"""vcmeasure: automated measurement of vertebral body compression (VC) on lateral spine radiographs.

Reproduces Seo et al., "A deep learning algorithm for automated measurement of vertebral body compression
from X-ray images", Scientific Reports 11:13732 (2021). The package holds all logic; the Snakemake workflow
under ``workflow/`` only wires it together.
"""

__version__ = "0.1.0"
