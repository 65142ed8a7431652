"""Object detection: COCO box evaluation as pycocotools computes it, in mergeable states."""
