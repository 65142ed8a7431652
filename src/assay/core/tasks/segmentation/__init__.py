"""Semantic segmentation: pixel confusion, IoU and Dice per class, in mergeable states."""
