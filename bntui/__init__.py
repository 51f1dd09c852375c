"""bntui: a terminal debugger for the BatchNormalization layers of saved Keras models."""

__version__ = "0.1.0"
