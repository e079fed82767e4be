"""Social signals (issue 14): a user's ranking blends in the profiles of the users they follow."""
