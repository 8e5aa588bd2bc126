"""The control plane: the one writer of the control store, snapshots, live state and models."""
