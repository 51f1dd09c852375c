"""Readers of the TensorFlow formats Keras models also live in: SavedModel directories,
TensorFlow.js layers models and TF checkpoints.

Everything here is pure Python, numpy and bntui's own protobuf wire decoder: no TensorFlow,
no protobuf package. :mod:`bntui.core.reader` picks the reader for a path.
"""
