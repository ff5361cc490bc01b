"""The transactional outbox: an order and the job that mails its receipt commit or roll back together.

    python examples/outbox.py [URL]        # default: sqlite:///outbox.sqlite

The application writes its order through its own SQLAlchemy ORM session and
enqueues the receipt job on the same connection (``connection=``): the job
exists exactly when the order does. The second order fails after both writes,
and its rollback takes the job with it.
"""

from __future__ import annotations

import sys

from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import sidequest_sql as sq


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "shop_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255))


class PaymentDeclined(Exception):
    pass


def place_order(session: Session, backend: sq.SQLBackend, email: str, *, declined: bool = False) -> int:
    """Store the order and enqueue its receipt in one transaction; a decline undoes both."""
    with session.begin():
        order = Order(email=email)
        session.add(order)
        session.flush()  # the order's id, inside the transaction
        backend.create_new_job(
            sq.NewJobData(queue="receipts", script="shop.jobs", job_class="SendReceipt", args=[order.id, email]),
            connection=session.connection(),
        )
        if declined:
            raise PaymentDeclined(email)
        return order.id


def main(url: str) -> None:
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with sq.create_backend(url) as backend, Session(engine) as session:
        backend.migrate()
        placed = place_order(session, backend, "ada@example.com")
        try:
            place_order(session, backend, "bob@example.com", declined=True)
        except PaymentDeclined:
            pass
        orders = session.query(Order).count()
        receipts = [job.args for job in backend.list_jobs(queue="receipts")]
        print(f"order {placed} placed; {orders} order(s) stored; receipt jobs: {receipts}")
        assert receipts == [[placed, "ada@example.com"]], "the declined order's receipt was enqueued"
        backend.truncate()
    Base.metadata.drop_all(engine)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///outbox.sqlite")
