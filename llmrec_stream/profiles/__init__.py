"""User profiles: fusion maths and the Redis store."""
