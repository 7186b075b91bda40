"""API keys live in `registry.keys`; this name stays for the modules that import it here."""

from registry.keys import KeyStore, NewKey, Principal, Role, create_key, hash_key, revoke_key

__all__ = ["KeyStore", "NewKey", "Principal", "Role", "create_key", "hash_key", "revoke_key"]
