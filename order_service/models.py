"""The Order Service's tables. No table of the user service is ever read from here."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from servicekit.database import ExactDecimal, UtcDateTime, new_metadata

PENDING = "pending"
CANCELLED = "cancelled"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Order(Base):
    __tablename__ = "customer_order"
    __table_args__ = (Index("ix_customer_order_user_recent", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(ExactDecimal())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.position", lazy="raise", cascade="all, delete-orphan"
    )

    def data(self) -> OrderData:
        """This order as plain data (its lines must be loaded)."""
        return OrderData.of(
            self,
            tuple(
                OrderLineData(line.position, line.sku, line.quantity, line.unit_price)
                for line in self.lines
            ),
        )


class OrderLine(Base):
    __tablename__ = "order_line"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customer_order.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(ExactDecimal())


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` seen from a user, written in the same commit as its order."""

    __tablename__ = "idempotency_record"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


# An order as plain data: a new one (written with Core INSERTs) and one read to be shown
# (read with one Core SELECT). Neither is tracked by a session; building ORM instances
# (instrumented attributes, identity map, a collection for the lines) cost more than the
# rest of the request's own work. Only a change (a cancellation) loads an ``Order``, and
# hands out its ``data()``.
@dataclass(frozen=True, slots=True)
class OrderLineData:
    position: int
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class OrderData:
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    currency: str
    total: Decimal
    created_at: dt.datetime
    updated_at: dt.datetime
    lines: tuple[OrderLineData, ...]

    @classmethod
    def of(cls, order: Any, lines: tuple[OrderLineData, ...]) -> OrderData:
        """From anything with an order's columns as attributes: an ``Order``, a result row."""
        return cls(
            id=order.id,
            user_id=order.user_id,
            status=order.status,
            currency=order.currency,
            total=order.total,
            created_at=order.created_at,
            updated_at=order.updated_at,
            lines=lines,
        )
