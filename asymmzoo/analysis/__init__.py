"""The papers' analyses as library functions (CLI: ``asymmzoo analyze ...``).

ACNet: the average kernel magnitude matrix (Eq. 9-10, Fig. 6), pruning curves that zero corner /
skeleton / arbitrary kernel weights (Fig. 5), and accuracy under 90/180 degree rotation and up-down
flip (Table 4).
"""
from .kernels import square_kernels, kernel_magnitude_matrix, plot_kernel_matrix, dominant_kernel_size, \
    square_kernel_sizes
from .pruning import position_mask, prune_kernels, pruning_curves, plot_pruning_curves
from .robustness import TRANSFORMS, transform_images, rotation_robustness
