"""The snapshot format: written by the control plane, read by the decision workers."""
