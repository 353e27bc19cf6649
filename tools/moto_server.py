"""moto_server for the project's local stack, tests and benchmarks, with changes that make
it behave as DynamoDB and SQS do under load: many concurrent requests, and tables and queues
thousands deep. (Nine changes, listed below.)

1. moto serves each request on its own thread and takes no lock in DynamoDB, so two conditional
   updates of one item can both pass their condition, or one can lose the other's ADD. DynamoDB
   applies each request to an item atomically, and the rate limiter and every "moves once"
   guarantee count on that (a test racing two writers on one item would otherwise see both win).
   Here DynamoDB requests run one at a time (they hold Python's GIL while they run anyway).

Changes 2 to 4 remove costs moto has and AWS has not, which a benchmark would otherwise measure
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

5. A long-polling ReceiveMessage waits on a signal that only a new message raises, so a message
   whose visibility timeout ends is noticed only when the poll's one-second wait runs out, up to
   a second late. SQS hands it out as soon as it is visible, and the sender times hidden jobs to
   come back just before their second. Here the wait wakes every 100 ms to look again.

6. Every request listed moto's package directory to find its backend, a cost no AWS service
   has. Here the list is made once.

7. moto's own server (werkzeug's development server) closes the connection after every
   response, so each request paid for a new connection and a new thread, and it then waits
   10 ms on the socket before letting go of the thread. AWS keeps connections open. Here moto's
   application is served by waitress, which keeps them open and serves from a pool of threads.

8. For the data-plane operations (GetItem, PutItem, UpdateItem, Query, transactions, batches)
   moto builds its answer as plain JSON values and then walks the service model to render it,
   field by field, which took a fifth of moto's time under load. Here such an answer is
   rendered with `json.dumps`, keeping only the fields the operation's output has (moto adds
   one DynamoDB never sends); anything else, errors included, goes through moto's renderer. The
   two were compared on 25,000 answers of the integration tests: identical.

9. Which of a queue's messages are visible is worked out by reading the clock twice for every
   message in the queue, hidden ones included, as a datetime each time; a long poll does it on
   every wake (change 5: ten a second), twice. With a lane's 20 pollers and 750 jobs hidden
   while they wait for their second, that alone kept moto's one core busy. Here the clock is
   read once per look and the messages' times compared as numbers: the same messages, in the
   same order.

With 7 to 9, the 50-MPS sending benchmark went from about 24 texts a second to 44-50 (moto's
latency under load is still what limits it on two cores; docs/benchmarks.md).

And one addition, for the cost benchmark: with CLINIC_SMS_MOTO_CAPACITY=1 in its environment,
every DynamoDB response carries the read and write request units the request would consume on
AWS, in the header `x-clinic-sms-capacity` ("read=<units>;write=<units>"), reckoned by
DynamoDB's published rules from the items as they were before and after it (see
`_CapacityMeter`). moto's own ConsumedCapacity is a constant. Off otherwise: the reckoning
reads each item again, which the other benchmarks would measure.
Everything else is moto unchanged.

Usage: python tools/moto_server.py -H 127.0.0.1 -p PORT
"""

import argparse
import base64
import copy
import json
import math
import os
import sys
import threading
import time

import moto.backends as moto_backends

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.core.responses import ActionResult, get_service_model
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.core.utils import unix_time_millis
from moto.sqs.models import Queue, SQSBackend
import waitress


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


_WAKE_EVERY_SECS = 0.1


def visible_messages(self):
    now = unix_time_millis()
    return [m for m in self._messages if m.visible_at < now and m.delayed_until <= now]


def wait_for_messages(self, timeout):
    with self._messages_lock:
        self._messages_lock.wait_for(lambda: self.messages, timeout=min(timeout, _WAKE_EVERY_SECS))


_CAPACITY_HEADER = "x-clinic-sms-capacity"
_READ_UNIT = 4096
_WRITE_UNIT = 1024


def _units(size, unit):
    """Request units for one item of `size` bytes: rounded up, at least one."""
    return max(1, math.ceil(size / unit))


def _value_size(value):
    """DynamoDB's size of one attribute value (its JSON form: {"S": ...}, {"L": [...]}, ...):
    strings and binaries by length, numbers about a byte per two digits plus one, lists and maps
    3 bytes plus a byte per element (moto's own size leaves those out)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "B":  # base64 in the JSON form; DynamoDB counts the raw bytes
        return len(base64.b64decode(inner) if isinstance(inner, str) else inner)
    if kind == "N":
        return (sum(c.isdigit() for c in inner) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "SS":
        return sum(len(v.encode()) for v in inner)
    if kind == "BS":
        return sum(len(base64.b64decode(v) if isinstance(v, str) else v) for v in inner)
    if kind == "NS":
        return sum((sum(c.isdigit() for c in v) + 1) // 2 + 1 for v in inner)
    return 0


def _json_size(attributes):
    return sum(len(name.encode()) + _value_size(value) for name, value in attributes.items())


def _size(item):
    if item is None:
        return 0
    try:
        return _json_size(json.loads(json.dumps(item.to_json()["Attributes"], default=str)))
    except Exception:  # an attribute this sizing does not know: moto's own sizing
        return item.size()


def _same(a, b):
    return a.to_json() == b.to_json()


class _CapacityMeter:
    """Request units of one DynamoDB request, as on-demand DynamoDB bills them:

    - a write: one unit per KB of the larger of the item before and after it, and for each
      global secondary index, one unit per KB of each index entry it puts or deletes (an entry
      whose keys and projected attributes are unchanged is not written); a condition that fails
      still costs the larger of the stored item and the one being put; in a transaction, twice
      all of that, condition checks included;
    - a read: half a unit per 4 KB read (a whole unit when strongly consistent); a query or scan
      adds up the entries it read before rounding (those a filter dropped taken to weigh what the
      kept ones weigh on average), a get rounds each item, a miss costs the minimum.
    Sizes follow DynamoDB's rules (`_value_size`), lists and maps included.
    """

    def __init__(self, handler, action, body):
        self.backend = handler.dynamodb_backend
        self.action = action
        self.body = body
        self.writes = []  # (table name, key, factor, item before)
        if action in ("PutItem", "UpdateItem", "DeleteItem"):
            op_type = "Put" if action == "PutItem" else "Other"
            self._target(body.get("TableName"), op_type, body, 1)
        elif action == "TransactWriteItems":
            for entry in body.get("TransactItems", []):
                if isinstance(entry, dict) and len(entry) == 1:
                    op_type, op = next(iter(entry.items()))
                    self._target(op.get("TableName"), op_type, op, 2, check=op_type == "ConditionCheck")
        elif action == "BatchWriteItem":
            for name, requests in body.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        self._target(name, "Put", request["PutRequest"], 1)
                    elif "DeleteRequest" in request:
                        self._target(name, "Delete", request["DeleteRequest"], 1)

    def _target(self, name, op_type, op, factor, check=False):
        table = self.backend.tables.get(name)
        if table is None:
            return
        key = _key_of(table, op_type, op)
        if key is None:
            return
        try:
            before = self.backend.get_item(name, key)
        except Exception:  # an invalid key: the request itself fails on it
            return
        putting = _json_size(op.get("Item", {})) if op_type == "Put" else 0
        self.writes.append((table, name, key, factor, copy.deepcopy(before), check, putting))

    def header(self, status, response_body):
        read = self._read(response_body) if status == 200 else 0.0
        write = sum(self._write(target, status == 200) for target in self.writes)
        return f"read={read:g};write={write:g}"

    def _write(self, target, succeeded):
        table, name, key, factor, before, check, putting = target
        if check or not succeeded:
            return factor * _units(max(_size(before), putting), _WRITE_UNIT)
        after = self.backend.get_item(name, key)
        units = _units(max(_size(before), _size(after)), _WRITE_UNIT)
        for index in table.global_indexes:
            old = before is not None and all(k in before.attrs for k in index.schema_key_attrs)
            new = after is not None and all(k in after.attrs for k in index.schema_key_attrs)
            old_entry = index.project(before) if old else None
            new_entry = index.project(after) if new else None
            if old and new and all(before.attrs[k] == after.attrs[k] for k in index.schema_key_attrs):
                if not _same(old_entry, new_entry):
                    units += _units(new_entry.size(), _WRITE_UNIT)
                continue
            units += _units(old_entry.size(), _WRITE_UNIT) if old else 0
            units += _units(new_entry.size(), _WRITE_UNIT) if new else 0
        return factor * units

    def _read(self, response_body):
        per_unit = 1.0 if self.body.get("ConsistentRead") else 0.5
        if self.action == "GetItem":
            item = self._stored(self.body.get("TableName"), self.body.get("Key"), None)
            return per_unit * _units(_size(item), _READ_UNIT)
        if self.action == "BatchGetItem":
            units = 0.0
            for name, request in self.body.get("RequestItems", {}).items():
                factor = 1.0 if request.get("ConsistentRead") else 0.5
                for key in request.get("Keys", []):
                    units += factor * _units(_size(self._stored(name, key, None)), _READ_UNIT)
            return units
        if self.action in ("Query", "Scan"):
            try:
                items = json.loads(response_body).get("Items", [])
            except (TypeError, ValueError):
                items = []
            name = self.body.get("TableName")
            index = self.body.get("IndexName")
            total = 0
            for returned in items:
                stored = self._stored(name, None, index, returned)
                total += _size(stored) if stored is not None else _json_size(returned)
            # A filter drops items after they were read, and read is what is billed: the items
            # evaluated are taken to be the size of the ones kept, on average.
            try:
                scanned = int(json.loads(response_body).get("ScannedCount", len(items)))
            except (TypeError, ValueError):
                scanned = len(items)
            if items and scanned > len(items):
                total = total * scanned // len(items)
            return per_unit * _units(total, _READ_UNIT)
        return 0.0

    def _stored(self, name, key, index_name, returned=None):
        """The item (or its index entry) as stored, not as a projection expression cut it."""
        table = self.backend.tables.get(name)
        if table is None:
            return None
        if key is None:
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n is not None]
            if returned is None or any(n not in returned for n in names):
                return None
            key = {n: returned[n] for n in names}
        try:
            item = self.backend.get_item(name, key)
        except Exception:
            return None
        if item is not None and index_name:
            for index in table.global_indexes:
                if index.name == index_name:
                    return index.project(item)
        return item


_DATA_PLANE = frozenset(
    {"GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
     "TransactWriteItems", "TransactGetItems", "BatchWriteItem"}
)
_serialized = DynamoHandler.serialized


def _plain(value):
    """The result as JSON carries it, without absent (None) fields; `_NOT_PLAIN` when it holds
    anything JSON has no plain form for (bytes, dates), which moto's renderer must render."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is None:
                continue
            plain = _plain(v)
            if plain is _NOT_PLAIN:
                return _NOT_PLAIN
            out[k] = plain
        return out
    if isinstance(value, list):
        out = []
        for v in value:
            plain = _plain(v)
            if plain is _NOT_PLAIN:
                return _NOT_PLAIN
            out.append(plain)
        return out
    if isinstance(value, (str, bool, int, float)):
        return value
    return _NOT_PLAIN


_NOT_PLAIN = object()
_members = {}


def _output_members(action):
    """The names the operation's output shape has: moto adds others that DynamoDB never sends."""
    if action not in _members:
        model = get_service_model("dynamodb").operation_model(action)
        _members[action] = frozenset(model.output_shape.members)
    return _members[action]


def serialized(self, action_result):
    result = action_result.result
    if type(action_result) in (ActionResult, DynamoResult) and isinstance(result, dict) and self._get_action() in _DATA_PLANE:
        members = _output_members(self._get_action())
        plain = _plain({k: v for k, v in result.items() if k in members})
        if plain is not _NOT_PLAIN:
            body = json.dumps(plain, separators=(",", ":"))
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            headers.update(self.response_headers)
            return 200, headers, body
    return _serialized(self, action_result)


_one_at_a_time = threading.Lock()
_call_action = DynamoHandler.call_action


_METERED = os.environ.get("CLINIC_SMS_MOTO_CAPACITY") == "1"


def call_action(self):
    with _one_at_a_time:
        meter = None
        if _METERED:
            try:
                meter = _CapacityMeter(self, self._get_action(), getattr(self, "params", None) or {})
            except Exception:  # metering must never change an answer
                meter = None
        status, headers, body = _call_action(self)
        if meter is not None:
            try:
                headers[_CAPACITY_HEADER] = meter.header(status, body)
            except Exception:
                pass
        return status, headers, body


DynamoHandler.call_action = call_action
DynamoHandler.serialized = serialized
dynamodb_models.copy = _TablesAreNotCopied
DynamoDBBackend.transact_write_items = transact_write_items
SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
Queue.attributes = property(attributes)
SQSBackend.send_message = send_message
Queue.wait_for_messages = wait_for_messages
Queue.messages = property(visible_messages)
_moto_modules = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _moto_modules



def serve(argv):
    """moto's application as `moto.server.main` builds it, on waitress (change 7)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    waitress.serve(
        app,
        host=args.host,
        port=args.port,
        threads=64,
        connection_limit=4096,
        channel_timeout=3600,
        backlog=2048,
        ident=None,
        _quiet=True,
    )


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
