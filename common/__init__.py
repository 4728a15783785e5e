"""The bottom layer: small helpers every other package may import (it imports none of them)."""
