"""The formats both planes share, each with one writer and any number of readers, and
importing neither plane: signed tracking tokens and their keys (`signing.py`), versioned
directories sealed by a manifest (`versions.py`: the one function that writes a manifest,
fsyncs and seals), the live state the control process writes for the workers
(`livestate.py`, live.lmdb) and the append-only segment logs of decisions and events
(`segment.py`). The snapshot format is `adserver/snapshot/`, the wire formats
`adserver/wire/`."""
