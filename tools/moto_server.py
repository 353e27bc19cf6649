"""moto_server for the project's local stack, tests and benchmarks, with changes that make
it behave as DynamoDB and SQS do under load: many concurrent requests, and tables and queues
thousands deep. (Four changes, listed below.)

1. moto serves each request on its own thread and takes no lock in DynamoDB, so two conditional
   updates of one item can both pass their condition, or one can lose the other's ADD. DynamoDB
   applies each request to an item atomically, and the rate limiter and every "moves once"
   guarantee count on that (a test racing two writers on one item would otherwise see both win).
   Here DynamoDB requests run one at a time (they hold Python's GIL while they run anyway).

The other two remove costs moto has and AWS has not, which a benchmark would otherwise measure
rather than the product:

2. moto 5.2.5 deep-copies every table a transaction names before applying it, so that it can
   roll back, and each TransactWriteItems then costs time in proportion to the table's size.
   Here the tables are not copied; the items the transaction names are saved before it runs and
   put back if it fails, which is the same all-or-nothing result.
3. For every message a ReceiveMessage returns, moto computes all of the queue's attributes,
   counting every message in the queue, only to read its retention period. Here the retention
   period is read directly, so a receive no longer grows with the queue's depth.

4. Likewise every SendMessage computes all of the queue's attributes, counting every message in
   it, only to read `ContentBasedDeduplication`, which a standard queue does not have. Here a
   standard queue skips that, so a send no longer grows with the queue's depth (filling a lane
   with 10,000 jobs was quadratic).
Everything else is moto unchanged.

Usage: python tools/moto_server.py -H 127.0.0.1 -p PORT
"""

import copy
import sys
import threading
import time

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main
from moto.sqs.models import Queue, SQSBackend


class _TablesAreNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: tables come back as they
    are (the wrapper below does the rollback), anything else is deep-copied as before."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _key_of(table, op_type, op):
    if op_type != "Put":
        return op.get("Key")
    item = op.get("Item", {})
    names = [table.hash_key_attr, table.range_key_attr]
    if any(name is not None and name not in item for name in names):
        return None
    return {name: item[name] for name in names if name is not None}


def _saved_items(backend, transact_items):
    saved = []
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        op_type, op = next(iter(entry.items()))
        name = op.get("TableName") if isinstance(op, dict) else None
        table = backend.tables.get(name)
        if table is None:
            continue
        key = _key_of(table, op_type, op)
        if key is None:
            continue
        try:
            item = backend.get_item(name, key)
        except Exception:  # an invalid key: the transaction itself will fail on it
            continue
        attributes = copy.deepcopy(item.to_json()["Attributes"]) if item else None
        saved.append((name, key, attributes))
    return saved


_transact_write_items = DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    saved = _saved_items(self, transact_items)
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        for name, key, attributes in reversed(saved):
            if attributes is None:
                self.delete_item(name, key)
            else:
                self.put_item(name, attributes)
        raise


def is_message_valid_based_on_retention_period(self, queue_name, message):
    retention_seconds = int(self.get_queue(queue_name).message_retention_period)
    return retention_seconds + message.sent_timestamp / 1000 > time.time()


_sending_to_standard_queue = threading.local()
_queue_attributes = Queue.attributes


def attributes(self):
    # Only send_message reads attributes while this is set, for ContentBasedDeduplication,
    # which standard queues do not have.
    if getattr(_sending_to_standard_queue, "queue", None) is self:
        return {}
    return _queue_attributes.fget(self)


_send_message = SQSBackend.send_message


def send_message(self, queue_name, *args, **kwargs):
    queue = self.get_queue(queue_name)
    if queue.fifo_queue:
        return _send_message(self, queue_name, *args, **kwargs)
    _sending_to_standard_queue.queue = queue
    try:
        return _send_message(self, queue_name, *args, **kwargs)
    finally:
        _sending_to_standard_queue.queue = None


_one_at_a_time = threading.Lock()
_call_action = DynamoHandler.call_action


def call_action(self):
    with _one_at_a_time:
        return _call_action(self)


DynamoHandler.call_action = call_action
dynamodb_models.copy = _TablesAreNotCopied
DynamoDBBackend.transact_write_items = transact_write_items
SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
Queue.attributes = property(attributes)
SQSBackend.send_message = send_message

if __name__ == "__main__":
    sys.exit(main())
