"""A MongoDB server for LibreChat's end-to-end runs: the wire protocol over mongomock.

No MongoDB server can be installed on the machines this suite runs on, and LibreChat (through
mongoose and the Node.js driver) only needs a handful of commands. This speaks OP_MSG (and
OP_QUERY for the driver's legacy handshake), executes each command on an in-memory mongomock
client and answers as a standalone MongoDB 6.0 would. Every command name is counted so a run
can show what LibreChat asked for, and an unknown command is answered with MongoDB's own
CommandNotFound error instead of a dropped connection.

    python -m e2e.mongo_wire --port 27017
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from typing import Any

import bson
import mongomock
import pymongo
from bson.codec_options import CodecOptions

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
_HEADER = struct.Struct("<iiii")
_CODEC = CodecOptions(document_class=dict)
_IGNORED_FIELDS = {
    "$db",
    "lsid",
    "txnNumber",
    "$clusterTime",
    "readConcern",
    "writeConcern",
    "$readPreference",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "autocommit",
    "startTransaction",
    "comment",
    "maxTimeMS",
    "bypassDocumentValidation",
}
MAX_BSON = 16 * 1024 * 1024
MAX_MESSAGE = 48_000_000
WIRE_VERSION = 17  # MongoDB 6.0


class CommandError(Exception):
    def __init__(self, message: str, code: int = 2, code_name: str = "BadValue") -> None:
        super().__init__(message)
        self.code = code
        self.code_name = code_name


class MongoBackend:
    """Runs commands on mongomock, one at a time (mongomock is not thread-safe)."""

    def __init__(self) -> None:
        self.client: mongomock.MongoClient = mongomock.MongoClient()
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self._handlers: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
            "hello": self._hello,
            "ismaster": self._hello,
            "ping": _ok,
            "buildinfo": self._build_info,
            "getparameter": _ok,
            "getcmdlineopts": lambda _db, _c: {"argv": [], "parsed": {}},
            "endsessions": _ok,
            "committransaction": _ok,
            "aborttransaction": _ok,
            "killcursors": lambda _db, c: {"cursorsKilled": c.get("cursors", [])},
            "listdatabases": self._list_databases,
            "listcollections": self._list_collections,
            "create": self._create,
            "drop": self._drop,
            "dropdatabase": self._drop_database,
            "createindexes": self._create_indexes,
            "listindexes": self._list_indexes,
            "dropindexes": self._drop_indexes,
            "find": self._find,
            "aggregate": self._aggregate,
            "count": self._count,
            "distinct": self._distinct,
            "insert": self._insert,
            "update": self._update,
            "delete": self._delete,
            "findandmodify": self._find_and_modify,
            "collmod": _ok,
        }

    # -- dispatch ---------------------------------------------------------------------------

    def run(self, command: dict[str, Any]) -> dict[str, Any]:
        if not command:
            return _error("empty command", 9, "FailedToParse")
        name = next(iter(command))
        db = command.get("$db") or "admin"
        self.counts[name] += 1
        handler = self._handlers.get(name.lower())
        if handler is None:
            return _error(f"no such command: '{name}'", 59, "CommandNotFound")
        body = {k: v for k, v in command.items() if k not in _IGNORED_FIELDS}
        try:
            with self.lock:
                result = handler(db, body)
        except CommandError as exc:
            return _error(str(exc), exc.code, exc.code_name)
        except pymongo.errors.DuplicateKeyError as exc:
            return _error(str(exc), 11000, "DuplicateKey")
        except (pymongo.errors.PyMongoError, NotImplementedError, ValueError, TypeError) as exc:
            return _error(f"{name}: {type(exc).__name__}: {exc}", 2, "BadValue")
        result.setdefault("ok", 1.0)
        return result

    def _coll(self, db: str, command: dict[str, Any]) -> mongomock.Collection:
        name = next(iter(command.values()))
        if not isinstance(name, str):
            raise CommandError("collection name must be a string", 73, "InvalidNamespace")
        return self.client[db][name]

    # -- server ------------------------------------------------------------------------------

    def _hello(self, _db: str, _command: dict[str, Any]) -> dict[str, Any]:
        return {
            "helloOk": True,
            "ismaster": True,
            "isWritablePrimary": True,
            "maxBsonObjectSize": MAX_BSON,
            "maxMessageSizeBytes": MAX_MESSAGE,
            "maxWriteBatchSize": 100_000,
            "localTime": datetime.datetime.now(datetime.UTC),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": 1,
            "minWireVersion": 0,
            "maxWireVersion": WIRE_VERSION,
            "readOnly": False,
        }

    def _build_info(self, _db: str, _command: dict[str, Any]) -> dict[str, Any]:
        return {"version": "6.0.0", "versionArray": [6, 0, 0, 0], "maxBsonObjectSize": MAX_BSON}

    def _list_databases(self, _db: str, _command: dict[str, Any]) -> dict[str, Any]:
        names = self.client.list_database_names()
        return {"databases": [{"name": n, "sizeOnDisk": 0, "empty": False} for n in names]}

    # -- collections and indexes ----------------------------------------------------------------

    def _list_collections(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        wanted = (command.get("filter") or {}).get("name")
        infos = [
            {"name": n, "type": "collection", "options": {}, "info": {"readOnly": False}}
            for n in self.client[db].list_collection_names()
            if wanted is None or n == wanted
        ]
        return _cursor(f"{db}.$cmd.listCollections", infos)

    def _create(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        name = command["create"]
        if name not in self.client[db].list_collection_names():
            self.client[db].create_collection(name)
        return {}

    def _drop(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        self.client[db].drop_collection(command["drop"])
        return {}

    def _drop_database(self, db: str, _command: dict[str, Any]) -> dict[str, Any]:
        self.client.drop_database(db)
        return {}

    def _create_indexes(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        before = len(coll.index_information())
        for spec in command.get("indexes", []):
            options = {
                k: spec[k] for k in ("name", "unique", "sparse", "expireAfterSeconds") if k in spec
            }
            if "partialFilterExpression" in spec:
                options["partialFilterExpression"] = spec["partialFilterExpression"]
            try:
                coll.create_index(list(spec["key"].items()), **options)
            except (NotImplementedError, TypeError, ValueError, pymongo.errors.OperationFailure):
                continue  # an index kind mongomock lacks only costs speed here
        return {
            "numIndexesBefore": before,
            "numIndexesAfter": len(coll.index_information()),
            "createdCollectionAutomatically": False,
        }

    def _list_indexes(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        indexes = [
            {"v": 2, "key": dict(info["key"]), "name": name}
            | {k: v for k, v in info.items() if k not in ("key", "v")}
            for name, info in coll.index_information().items()
        ]
        return _cursor(f"{db}.{coll.name}", indexes)

    def _drop_indexes(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        index = command.get("index", "*")
        if index == "*":
            coll.drop_indexes()
        elif isinstance(index, str):
            coll.drop_index(index)
        return {}

    # -- reads ---------------------------------------------------------------------------------

    def _find(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        projection = command.get("projection") or None
        cursor = coll.find(command.get("filter") or {}, projection)
        sort = command.get("sort")
        if sort:
            cursor = cursor.sort([(k, v) for k, v in sort.items() if isinstance(v, int)])
        if command.get("skip"):
            cursor = cursor.skip(int(command["skip"]))
        limit = abs(int(command.get("limit") or 0))
        if limit:
            cursor = cursor.limit(limit)
        return _cursor(f"{db}.{coll.name}", list(cursor))

    def _aggregate(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        docs = list(coll.aggregate(command.get("pipeline", [])))
        return _cursor(f"{db}.{coll.name}", docs)

    def _count(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        options = {k: int(command[k]) for k in ("skip", "limit") if command.get(k)}
        return {"n": coll.count_documents(command.get("query") or {}, **options)}

    def _distinct(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        return {"values": coll.distinct(command["key"], command.get("query") or {})}

    # -- writes --------------------------------------------------------------------------------

    def _insert(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        n, errors = 0, []
        for index, doc in enumerate(command.get("documents", [])):
            try:
                coll.insert_one(doc)
                n += 1
            except pymongo.errors.DuplicateKeyError as exc:
                errors.append({"index": index, "code": 11000, "errmsg": str(exc)})
                if command.get("ordered", True):
                    break
        return {"n": n} | ({"writeErrors": errors} if errors else {})

    def _update(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        n = modified = 0
        upserted: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, op in enumerate(command.get("updates", [])):
            query, update = op.get("q") or {}, op.get("u") or {}
            options: dict[str, Any] = {"upsert": bool(op.get("upsert"))}
            if op.get("arrayFilters"):
                options["array_filters"] = op["arrayFilters"]
            try:
                if isinstance(update, dict) and not any(k.startswith("$") for k in update):
                    options.pop("array_filters", None)
                    result = coll.replace_one(query, update, **options)
                elif op.get("multi"):
                    result = coll.update_many(query, update, **options)
                else:
                    result = coll.update_one(query, update, **options)
            except pymongo.errors.DuplicateKeyError as exc:
                errors.append({"index": index, "code": 11000, "errmsg": str(exc)})
                if command.get("ordered", True):
                    break
                continue
            n += result.matched_count
            modified += result.modified_count
            if result.upserted_id is not None:
                n += 1
                upserted.append({"index": index, "_id": result.upserted_id})
        reply: dict[str, Any] = {"n": n, "nModified": modified}
        if upserted:
            reply["upserted"] = upserted
        if errors:
            reply["writeErrors"] = errors
        return reply

    def _delete(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        n = 0
        for op in command.get("deletes", []):
            query = op.get("q") or {}
            result = coll.delete_one(query) if op.get("limit") == 1 else coll.delete_many(query)
            n += result.deleted_count
        return {"n": n}

    def _find_and_modify(self, db: str, command: dict[str, Any]) -> dict[str, Any]:
        coll = self._coll(db, command)
        query = command.get("query") or {}
        sort = [(k, v) for k, v in (command.get("sort") or {}).items()] or None
        projection = command.get("fields") or None
        after = (
            pymongo.ReturnDocument.AFTER if command.get("new") else pymongo.ReturnDocument.BEFORE
        )
        if command.get("remove"):
            value = coll.find_one_and_delete(query, projection=projection, sort=sort)
            return {"lastErrorObject": {"n": int(value is not None)}, "value": value}
        update = command.get("update") or {}
        upsert = bool(command.get("upsert"))
        existed = coll.count_documents(query, limit=1) > 0
        options: dict[str, Any] = {
            "projection": projection,
            "sort": sort,
            "upsert": upsert,
            "return_document": after,
        }
        if isinstance(update, dict) and not any(k.startswith("$") for k in update):
            value = coll.find_one_and_replace(query, update, **options)
        else:
            if command.get("arrayFilters"):
                options["array_filters"] = command["arrayFilters"]
            value = coll.find_one_and_update(query, update, **options)
        last: dict[str, Any] = {"n": int(existed or upsert), "updatedExisting": existed}
        if upsert and not existed:
            created = value if value is not None else coll.find_one(query)
            if created is not None:
                last["upserted"] = created.get("_id")
        return {"lastErrorObject": last, "value": value}


def _ok(_db: str, _command: dict[str, Any]) -> dict[str, Any]:
    return {}


def _cursor(namespace: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything in the first batch: the driver then never needs getMore."""
    return {"cursor": {"id": bson.int64.Int64(0), "ns": namespace, "firstBatch": docs}}


def _error(message: str, code: int, code_name: str) -> dict[str, Any]:
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name}


# -- wire protocol -------------------------------------------------------------------------------


def parse_op_msg(payload: bytes) -> tuple[int, dict[str, Any]]:
    """Flag bits and the command: the body section with every document sequence merged in."""
    (flags,) = struct.unpack_from("<I", payload, 0)
    end = len(payload) - (4 if flags & 1 else 0)
    pos = 4
    body: dict[str, Any] = {}
    sequences: dict[str, list[dict[str, Any]]] = {}
    while pos < end:
        kind = payload[pos]
        pos += 1
        if kind == 0:
            (size,) = struct.unpack_from("<i", payload, pos)
            body = bson.decode(payload[pos : pos + size], _CODEC)
            pos += size
        elif kind == 1:
            (size,) = struct.unpack_from("<i", payload, pos)
            section_end = pos + size
            name_end = payload.index(b"\x00", pos + 4)
            identifier = payload[pos + 4 : name_end].decode()
            docs = bson.decode_all(payload[name_end + 1 : section_end], _CODEC)
            sequences.setdefault(identifier, []).extend(docs)
            pos = section_end
        else:
            raise ValueError(f"unknown OP_MSG section kind {kind}")
    body.update(sequences)
    return flags, body


def parse_op_query(payload: bytes) -> dict[str, Any]:
    """The command of a legacy `<db>.$cmd` query (the driver's first handshake)."""
    name_end = payload.index(b"\x00", 4)
    namespace = payload[4:name_end].decode()
    pos = name_end + 1 + 8  # numberToSkip, numberToReturn
    (size,) = struct.unpack_from("<i", payload, pos)
    query = bson.decode(payload[pos : pos + size], _CODEC)
    if "$query" in query:
        query = query["$query"]
    query.setdefault("$db", namespace.split(".", 1)[0])
    return query


class _Handler(socketserver.BaseRequestHandler):
    server: MongoWireServer

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections.add(self.request)
        try:
            with contextlib.suppress(OSError):  # the driver closed or reset the connection
                self._serve()
        finally:
            with self.server.lock:
                self.server.connections.discard(self.request)

    def _serve(self) -> None:
        sock = self.request
        backend = self.server.backend
        while True:
            header = _read_exact(sock, _HEADER.size)
            if header is None:
                return
            length, request_id, _response_to, op_code = _HEADER.unpack(header)
            payload = _read_exact(sock, length - _HEADER.size)
            if payload is None:
                return
            if op_code == OP_MSG:
                flags, command = parse_op_msg(payload)
                reply = backend.run(command)
                if flags & 2:  # moreToCome: the client expects no answer
                    continue
                data = struct.pack("<IB", 0, 0) + bson.encode(reply)
                sock.sendall(_HEADER.pack(16 + len(data), 0, request_id, OP_MSG) + data)
            elif op_code == OP_QUERY:
                reply = backend.run(parse_op_query(payload))
                data = struct.pack("<iqii", 0, 0, 0, 1) + bson.encode(reply)
                sock.sendall(_HEADER.pack(16 + len(data), 0, request_id, OP_REPLY) + data)
            else:
                return  # OP_COMPRESSED and older opcodes are never negotiated here


def _read_exact(sock: Any, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        try:
            chunk = sock.recv(n - len(chunks))
        except OSError:
            return None
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


class MongoWireServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = MongoBackend()
        super().__init__((host, port), _Handler)
        self.port: int = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, name="mongo-wire", daemon=True)
        self.lock = threading.Lock()
        self.connections: set[Any] = set()

    def drop_connections(self) -> int:
        """Cut every client connection (as a network does while SnapStart keeps a snapshot):
        the client sees its socket reset at its next use. Returns how many were cut."""
        with self.lock:
            cut = list(self.connections)
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(cut)

    def start(self) -> MongoWireServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args()
    server = MongoWireServer(args.host, args.port)
    print(f"mongo wire server on {args.host}:{server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
