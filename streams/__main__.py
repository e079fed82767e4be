"""``python -m streams worker``: the Faust command line for this app."""

from streams.agents import app

if __name__ == "__main__":
    app.main()
