"""The stages of a decision, in the order adserver/serving/pipeline.py calls them."""
