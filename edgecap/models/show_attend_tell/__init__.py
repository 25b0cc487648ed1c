"""Show, Attend and Tell (Xu et al., ICML 2015): soft and hard attention.

``config.py`` (the ``[model]`` dataclass, no TensorFlow), ``decoder.py`` (the attention LSTM
written as one step), ``model.py`` (encoder + decoder behind the step contract).
"""
