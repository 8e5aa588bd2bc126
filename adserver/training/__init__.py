"""Training and evaluating models, in the control process only: the CTR/CVR trainer
(`ctr_train.py`), the embedding model's training (`embed_train.py`, scipy), off-policy
estimators (`ope.py`) and their check on the Open Bandit Dataset (`obd.py`). The data plane
never imports this package (an import-linter contract)."""
