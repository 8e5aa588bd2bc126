"""The vocabulary both planes speak, importing neither: the entities and their limits
(`entities.py`), targeting expressions (`expr.py`), field errors and the checks every route
applies where a value enters (`validation.py`), API keys and what they may do
(`apikeys.py`), the project's clock (`clock.py`: wall or simulated time, never read
directly), the stable hash (`hashing.py`) and text normalization (`text.py`)."""
