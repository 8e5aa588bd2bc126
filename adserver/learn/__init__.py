"""The models as serving loads them: the CTR/CVR model files and their scoring
(`ctr.py`), the personalization policy (`bandit.py`), the product embedding model
(`embed.py`) and the features both planes compute alike (`features.py`). Training and
off-policy evaluation are in `adserver/training/` (the control process only)."""
