"""Semantic attention (You et al., CVPR 2016): visual attributes, and input and output attention over them."""
