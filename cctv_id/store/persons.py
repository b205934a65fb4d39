"""Persons, enrolments and the watchlist.

Owns adding persons, enrolling (and removing) photo embeddings, re-enrolment (a person's
enrolments replaced in one transaction), the audit entry of an enrolment (written in the same
transaction), the watchlist generation counter that every change of enrolments bumps in the
same transaction, reading the watchlist of one model as a :class:`WatchlistData`, listing
persons (photos, hits, models), and the "unknown person" message that names the enrolled ones.
Photo files themselves are handled by :mod:`cctv_id.watchlist.enrol`; this module only stores
their relative paths (``enrolments.stored_photo``).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Integer, String, cast, delete, func, select, update
from sqlalchemy.orm import Session

from cctv_id.errors import NotFoundError, StoreError
from cctv_id.store.encoding import _blob, _unblob
from cctv_id.store.engine import RepositoryBase
from cctv_id.store.models import (
    WATCHLIST_GENERATION_KEY,
    Enrolment,
    HitRow,
    Meta,
    Person,
    utcnow,
)
from cctv_id.store.records import WatchlistData

_MAX_NAMES_IN_MESSAGE = 20


class PersonsMixin(RepositoryBase):
    """Persons, enrolments and the watchlist (part of :class:`Repository`)."""

    def add_person(self, name: str) -> int:
        """Get or create a person; adding a person alone does not change the watchlist."""
        name = self._name(name, "person")

        def body(s: Session):
            return self._person_id(s, name)

        return self._transact(body, write=True)

    def _person_id(self, s: Session, name: str) -> int:
        self._insert_ignore(s, Person, {"name": name, "created_at": utcnow()}, ["name"])
        return s.execute(select(Person.id).where(Person.name == name)).scalar_one()

    def require_person(self, name: str) -> None:
        """NotFoundError naming the enrolled people when ``name`` is not a person."""

        def body(s: Session):
            if s.execute(select(Person.id).where(Person.name == name.strip())).first() is None:
                raise self._unknown_person(s, name)

        self._transact(body)

    def person_exists(self, name: str) -> bool:

        def body(s: Session):
            return s.execute(select(Person.id).where(Person.name == name.strip())).first() is not None

        return self._transact(body)

    def add_enrolment(
        self,
        person_name: str,
        photo_path: str,
        photo_sha256: str,
        model: str,
        embedding: np.ndarray,
        face_px: float,
    ) -> int:
        """Enrol one photo's embedding; idempotent on (person, photo_sha256, model).

        A new enrolment bumps the watchlist generation in the same transaction.
        """
        return self.add_enrolments(
            [
                dict(
                    person_name=person_name,
                    photo_path=photo_path,
                    photo_sha256=photo_sha256,
                    model=model,
                    embedding=embedding,
                    face_px=face_px,
                )
            ]
        )[0]

    def add_enrolments(self, items: list[dict]) -> list[int]:
        """Several :meth:`add_enrolment` calls (dicts of its keyword arguments) in ONE
        transaction: all or nothing, one generation bump if anything new was enrolled."""
        return self.enrol(items)["enrolment_ids"]

    def enrol(self, items: list[dict], operator: str | None = None, replace: bool = False) -> dict:
        """Enrol photo embeddings in ONE transaction (all or nothing).

        ``items``: dicts with person_name, photo_path, photo_sha256, model, embedding, face_px
        and optionally stored_photo (the photo's copy under data_dir, relative path).
        Idempotent on (person, photo_sha256, model); an existing row without a stored photo
        gets the given one. ``replace``: every enrolment (of every model) of the persons named
        in ``items`` is deleted first, in the same transaction. ``operator``: an "enrol" audit
        entry is written in the same transaction. One generation bump if anything changed.

        Returns {"enrolment_ids", "n_new", "n_replaced", "persons", "orphaned_photos"}:
        orphaned_photos are stored photos no enrolment references any more (the caller
        deletes those files after this commit).
        """
        prepared = []
        for it in items:
            name = self._name(it["person_name"], "person")
            blob, dim = _blob(it["embedding"], f"enrolment of {name}")
            prepared.append((name, it, blob, dim))
        persons = sorted({name for name, *_ in prepared})

        def body(s: Session) -> dict:
            ids = []  # inside: a retried transaction starts again from scratch
            n_new = n_replaced = 0
            old_photos: set[str] = set()
            if replace:
                for name in persons:
                    person_id = self._person_id(s, name)
                    old_photos |= {p for p in s.execute(select(Enrolment.stored_photo).where(
                        Enrolment.person_id == person_id)).scalars() if p}
                    n_replaced += s.execute(
                        delete(Enrolment).where(Enrolment.person_id == person_id)).rowcount or 0
            for name, it, blob, dim in prepared:
                person_id = self._person_id(s, name)
                key = (str(it["photo_sha256"]), str(it["model"]))
                stored = it.get("stored_photo")
                n_new += int(bool(
                    self._insert_ignore(
                        s,
                        Enrolment,
                        {
                            "person_id": person_id,
                            "photo_path": str(it["photo_path"]),
                            "photo_sha256": key[0],
                            "model": key[1],
                            "embedding": blob,
                            "dim": dim,
                            "face_px": float(it["face_px"]),
                            "created_at": utcnow(),
                            "stored_photo": stored,
                        },
                        ["person_id", "photo_sha256", "model"],
                    )
                ))
                where = (Enrolment.person_id == person_id, Enrolment.photo_sha256 == key[0],
                         Enrolment.model == key[1])
                if stored:
                    s.execute(update(Enrolment).where(*where, Enrolment.stored_photo.is_(None))
                              .values(stored_photo=stored))
                ids.append(s.execute(select(Enrolment.id).where(*where)).scalar_one())
            orphaned = sorted(old_photos - self._referenced_photos(s, old_photos))
            if n_new or n_replaced:
                self._bump_generation(s)
            result = {"enrolment_ids": ids, "n_new": n_new, "n_replaced": n_replaced,
                      "persons": persons, "orphaned_photos": orphaned}
            if operator is not None:
                self._audit(s, operator, "enrol",
                            params={"persons": persons, "replace": bool(replace),
                                    "models": sorted({str(it["model"]) for _, it, _, _ in prepared}),
                                    "photo_sha256s": sorted({str(it["photo_sha256"])
                                                             for _, it, _, _ in prepared})},
                            outcome={"enrolment_ids": ids, "n_new": n_new,
                                     "n_replaced": n_replaced})
            return result

        return self._transact(body, write=True)

    @staticmethod
    def _referenced_photos(s: Session, paths: set[str]) -> set[str]:
        """Which of ``paths`` some enrolment still references as its stored photo."""
        if not paths:
            return set()
        return set(s.execute(select(Enrolment.stored_photo).where(
            Enrolment.stored_photo.in_(sorted(paths)))).scalars())

    def stored_photos(self) -> set[str]:
        """Every stored photo path (relative to data_dir) an enrolment references."""
        return self._transact(lambda s: set(s.execute(
            select(Enrolment.stored_photo).where(Enrolment.stored_photo.is_not(None))).scalars()))

    def remove_enrolments(self, person_name: str, model: str | None = None) -> int:
        """Take a person off the watchlist (for ``model``, or for every model).

        The person and their past hits stay (evidence is never erased by this). Returns the
        number of enrolments removed; bumps the generation when that is not zero.
        """
        def body(s: Session):
            person_id = s.execute(select(Person.id).where(Person.name == person_name)).scalar()
            if person_id is None:
                raise self._unknown_person(s, person_name)
            q = delete(Enrolment).where(Enrolment.person_id == person_id)
            if model is not None:
                q = q.where(Enrolment.model == model)
            n = s.execute(q).rowcount or 0
            if n:
                self._bump_generation(s)
            return n

        return self._transact(body, write=True)

    @staticmethod
    def _bump_generation(s: Session) -> None:
        res = s.execute(
            update(Meta)
            .where(Meta.key == WATCHLIST_GENERATION_KEY)
            .values(value=cast(cast(Meta.value, Integer) + 1, String))
        )
        if res.rowcount == 0:
            s.add(Meta(key=WATCHLIST_GENERATION_KEY, value="1"))
            s.flush()

    @staticmethod
    def _generation(s: Session) -> int:
        value = s.execute(select(Meta.value).where(Meta.key == WATCHLIST_GENERATION_KEY)).scalar()
        return int(value) if value is not None else 0

    def watchlist_generation(self) -> int:

        def body(s: Session):
            return self._generation(s)

        return self._transact(body)

    def watchlist(self, model: str) -> WatchlistData:
        """All enrolments for ``model`` (one row per enrolment, ordered by person then id)."""
        def body(s: Session):
            generation = self._generation(s)
            rows = s.execute(
                select(Enrolment.person_id, Person.name, Enrolment.embedding, Enrolment.dim)
                .join(Person, Person.id == Enrolment.person_id)
                .where(Enrolment.model == model)
                .order_by(Enrolment.person_id, Enrolment.id)
            ).all()
            return generation, rows

        generation, rows = self._transact(body)
        if not rows:
            return WatchlistData(generation, np.zeros((0,), np.int64), [], np.zeros((0, 0), np.float32))
        dims = {r.dim for r in rows}
        if len(dims) != 1:
            raise StoreError(f"enrolments for model {model!r} have mixed dimensions {sorted(dims)}")
        embeddings = np.stack([_unblob(r.embedding, r.dim) for r in rows]).astype(np.float32)
        return WatchlistData(
            generation=generation,
            person_ids=np.array([r.person_id for r in rows], dtype=np.int64),
            names=[r.name for r in rows],
            embeddings=embeddings,
        )

    def list_persons(self) -> list[dict]:
        """Every person with their number of enrolled photos, of hits, and the models their
        enrolments were embedded with, by name."""
        photos = (
            select(Enrolment.person_id, func.count(func.distinct(Enrolment.photo_sha256)).label("n"))
            .group_by(Enrolment.person_id)
            .subquery()
        )
        hits = (
            select(HitRow.person_id, func.count().label("n")).group_by(HitRow.person_id).subquery()
        )
        q = (
            select(
                Person.name,
                func.coalesce(photos.c.n, 0),
                func.coalesce(hits.c.n, 0),
                Person.created_at,
            )
            .outerjoin(photos, photos.c.person_id == Person.id)
            .outerjoin(hits, hits.c.person_id == Person.id)
            .order_by(Person.name)
        )

        def body(s: Session):
            models: dict[str, set[str]] = {}
            for name, model in s.execute(select(Person.name, Enrolment.model).join(
                    Enrolment, Enrolment.person_id == Person.id).distinct()):
                models.setdefault(name, set()).add(model)
            return [
                {"name": r[0], "n_photos": int(r[1]), "n_hits": int(r[2]),
                 "models": sorted(models.get(r[0], ())), "created_at": r[3]}
                for r in s.execute(q)
            ]

        return self._transact(body)

    def _unknown_person(self, s: Session, name: str) -> NotFoundError:
        names = list(s.execute(select(Person.name).order_by(Person.name)).scalars())
        return NotFoundError(f"unknown person {name!r}; enrolled: {self._names_list(names)}")

    @staticmethod
    def _names_list(names: list[str]) -> str:
        if not names:
            return "(none)"
        shown = ", ".join(names[:_MAX_NAMES_IN_MESSAGE])
        return shown + (f", … ({len(names)} in all)" if len(names) > _MAX_NAMES_IN_MESSAGE else "")
