@_exported import MilestoneCrypto
