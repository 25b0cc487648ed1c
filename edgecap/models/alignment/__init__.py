"""Karpathy & Fei-Fei's image–sentence alignment model (CVPR 2015, §3.1): retrieval and word–region alignment."""
