"""Karpathy & Fei-Fei's multimodal RNN generator (CVPR 2015, §3.2)."""
