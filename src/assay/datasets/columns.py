"""Reserved column names of a stored dataset manifest.

Readers keep every source column under its own name (spaces and brackets included) and add these
reserved columns, so that a user's column called ``label`` or ``path`` can never collide with ours.
"""

ITEM_ID = "__item_id"
LABEL = "__label"
PATH = "__path"  # absolute path of the item's file (image datasets)
SHA256 = "__sha256"  # content digest of that file, checked again when it is read

RESERVED = (ITEM_ID, LABEL, PATH, SHA256)
