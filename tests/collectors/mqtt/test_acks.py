from __future__ import annotations

from collectors.mqtt.acks import AckWindow, Delivery


def delivery(mid: int) -> Delivery:
    return Delivery(mid, 1, "meterhub/v1/gw/readings", b"{}", generation=1, received_at=0.0)


def test_acks_leave_in_arrival_order() -> None:
    window = AckWindow()
    slots = [window.open(delivery(mid)) for mid in (1, 2, 3, 4)]
    assert window.settle([slots[2]], durable=True) == []
    assert window.settle([slots[1]], durable=False) == []
    ready = window.settle([slots[0]], durable=True)
    assert [(s.delivery.mid, s.durable) for s in ready] == [(1, True), (2, False), (3, True)]
    assert len(window) == 1
    assert [s.delivery.mid for s in window.settle([slots[3]], durable=True)] == [4]
    assert len(window) == 0


def test_a_settled_group_leaves_once_everything_before_it_has() -> None:
    window = AckWindow()
    slots = [window.open(delivery(mid)) for mid in range(1, 8)]
    assert window.settle(slots[3:6], durable=True) == []  # 4, 5, 6 wait for 1, 2, 3
    assert [s.delivery.mid for s in window.settle(slots[:2], durable=True)] == [1, 2]
    ready = window.settle(slots[2:3], durable=False)
    assert [(s.delivery.mid, s.durable) for s in ready] == [
        (3, False),
        (4, True),
        (5, True),
        (6, True),
    ]
    assert len(window) == 1
    assert window.settle([], durable=True) == []
