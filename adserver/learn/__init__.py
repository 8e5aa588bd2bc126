"""Learning: embeddings (and, later, CTR models and bandits). Used by both planes; training
code (scipy) is imported only by the control process."""
