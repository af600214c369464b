"""The book's rules one at a time, on tiny books."""

from auction.book import BUY, MARKET_BUY_PRICE, SELL, Book, Fill, Order


def submit(
    book: Book, order: Order, rest: bool = True
) -> tuple[list[tuple[int, int, int, int]], list[tuple[int, int]]]:
    fills: list[Fill] = []
    stranded: list[tuple[Order, int]] = []
    book.submit(order, fills, stranded)
    if rest and order.qty:
        book.rest(order)
    return [(t.id, m.id, p, q) for t, m, p, q in fills], [(m.id, q) for m, q in stranded]


def test_price_then_time_priority_at_the_makers_price() -> None:
    book = Book()
    submit(book, Order(1, SELL, 101, 5))
    submit(book, Order(2, SELL, 100, 5))
    submit(book, Order(3, SELL, 100, 5))
    fills, _ = submit(book, Order(4, BUY, 105, 12))
    assert fills == [(4, 2, 100, 5), (4, 3, 100, 5), (4, 1, 101, 2)]
    assert book.depth(SELL) == [(101, 3, 1)]
    assert book.best_price(BUY) is None


def test_limit_rests_and_book_is_not_crossed() -> None:
    book = Book()
    submit(book, Order(1, SELL, 100, 5))
    fills, _ = submit(book, Order(2, BUY, 99, 5))
    assert fills == []
    assert book.best_price(BUY) == 99
    assert book.best_price(SELL) == 100


def test_market_order_on_empty_side_does_nothing() -> None:
    book = Book()
    order = Order(1, BUY, MARKET_BUY_PRICE, 10)
    fills, _ = submit(book, order, rest=False)
    assert fills == []
    assert order.qty == 10
    assert len(book) == 0


def test_cancel_is_lazy_but_invisible() -> None:
    book = Book()
    for i in range(1, 6):
        submit(book, Order(i, BUY, 100, 1))
    got = book.cancel(2)
    assert got is not None and got[1] == 1
    assert book.cancel(2) is None
    assert book.depth(BUY) == [(100, 4, 4)]
    fills, _ = submit(book, Order(9, SELL, 100, 3))
    assert [f[1] for f in fills] == [1, 3, 4]


def test_cancelling_the_last_order_removes_the_level() -> None:
    book = Book()
    submit(book, Order(1, BUY, 100, 1))
    submit(book, Order(2, BUY, 90, 1))
    submit(book, Order(3, BUY, 95, 1))
    book.cancel(3)
    assert [p for p, _, _ in book.depth(BUY)] == [100, 90]
    book.cancel(1)
    assert book.best_price(BUY) == 90


def test_many_cancels_compact_the_level() -> None:
    book = Book()
    for i in range(1, 1001):
        submit(book, Order(i, BUY, 100, 1))
    for i in range(1, 1000):
        book.cancel(i)
    level = book._levels[BUY][100]
    assert len(level.orders) < 100  # dead entries were compacted away
    fills, _ = submit(book, Order(5000, SELL, 100, 5))
    assert fills == [(5000, 1000, 100, 1)]


def test_reduce_keeps_priority() -> None:
    book = Book()
    submit(book, Order(1, BUY, 100, 10))
    submit(book, Order(2, BUY, 100, 10))
    book.reduce(1, 4)
    fills, _ = submit(book, Order(3, SELL, 100, 5))
    assert fills == [(3, 1, 100, 4), (3, 2, 100, 1)]


def test_same_org_never_trades_and_is_skipped() -> None:
    book = Book()
    submit(book, Order(1, BUY, 110, 10, org="A"))
    submit(book, Order(2, BUY, 100, 10, org="B"))
    fills, _ = submit(book, Order(3, SELL, 100, 10, org="A"))
    assert fills == [(3, 2, 100, 10)]
    assert book.depth(BUY) == [(110, 10, 1)]


def test_all_or_none_taker_takes_one_maker_that_fits() -> None:
    book = Book()
    submit(book, Order(1, BUY, 110, 300, org="A"))
    submit(book, Order(2, BUY, 105, 1000, org="B"))
    lot = Order(3, SELL, 0, 800, org="S", aon=True)
    fills, _ = submit(book, lot, rest=False)
    assert fills == [(3, 2, 105, 800)]
    assert lot.qty == 0


def test_all_or_none_maker_is_skipped_when_too_big() -> None:
    book = Book()
    submit(book, Order(1, SELL, 100, 800, org="S", aon=True))
    submit(book, Order(2, SELL, 101, 200, org="T", aon=True))
    fills, _ = submit(book, Order(3, BUY, 105, 500, org="A"))
    assert fills == [(3, 2, 101, 200)]
    assert book.depth(SELL) == [(100, 800, 1)]


def test_min_lot_skips_small_fills_and_strands_small_remainders() -> None:
    book = Book()
    submit(book, Order(1, BUY, 110, 1000, org="A", min_qty=400))
    submit(book, Order(2, BUY, 100, 1000, org="B"))
    fills, _ = submit(book, Order(3, SELL, 0, 300, org="S", aon=True), rest=False)
    assert fills == [(3, 2, 100, 300)]  # 300 kg is below bid 1's minimum lot
    fills, stranded = submit(book, Order(4, SELL, 0, 700, org="S", aon=True), rest=False)
    assert fills == [(4, 1, 110, 700)]
    assert stranded == [(1, 300)]  # 300 kg left < 400 kg minimum: can never trade again
    assert 1 not in book


def test_partial_lot_splits_across_bids() -> None:
    book = Book()
    submit(book, Order(1, BUY, 110, 300, org="A"))
    submit(book, Order(2, BUY, 105, 1000, org="B"))
    lot = Order(3, SELL, 100, 800, org="S")
    fills, _ = submit(book, lot)
    assert fills == [(3, 1, 110, 300), (3, 2, 105, 500)]
    assert book.depth(BUY) == [(105, 500, 1)]


def test_orders_iterates_in_priority_order() -> None:
    book = Book()
    submit(book, Order(1, SELL, 102, 1))
    submit(book, Order(2, SELL, 101, 1))
    submit(book, Order(3, SELL, 101, 1))
    submit(book, Order(4, SELL, 103, 1))
    assert [o.id for o in book.orders(SELL)] == [2, 3, 1, 4]
    assert book.resting_qty(SELL) == 4
