"""``python3 -m eservice hash-password``: the hash of a password read on standard input, for the vault."""

import sys

from eservice.passwords import hash_password


def main() -> int:
    if sys.argv[1:] != ["hash-password"]:
        print("usage: python3 -m eservice hash-password < password  (prints the hash the vault keeps)", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        print("hash-password: the password must have at least 12 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


sys.exit(main())
