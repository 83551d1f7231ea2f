"""MqttLink's routing and its reading of the broker's socket, on a real Mosquitto: each message goes
to the handlers whose filters match its topic (wildcards, shared subscriptions), a burst of QoS 1
messages arrives whole and in order, and what is published from a handler (on the link's network
thread) or from another thread goes out."""

from __future__ import annotations

import threading

from support import HUB, NODE_A, Collector, connected_link, mqtt_settings
from thanthien.mqtt import Message, MqttLink
from thanthien.protocol import Topics

T = Topics()


def test_each_message_goes_to_the_route_whose_filter_matches_its_topic(broker):
    plus, hash_, share = Collector(), Collector(), Collector()
    hub = connected_link(broker.port, HUB, "link-routes", {
        f"{T.root}/node/+/telemetry": plus, f"{T.root}/node/node-a/event/#": hash_})
    shared = connected_link(broker.port, HUB, "link-routes-shared",
                            {f"$share/link-test/{T.root}/node/+/telemetry": share})
    node = connected_link(broker.port, NODE_A, "link-routes-node")
    try:
        node.publish_confirmed(T.telemetry("node-a"), b"t", qos=1)
        node.publish_confirmed(T.rating("node-a"), b"r", qos=1)
        assert hash_.wait_count(1) and plus.wait_count(1) and share.wait_count(1)
        node.publish_confirmed(T.telemetry("node-a"), b"marker", qos=1)  # later than any stray copy
        assert plus.wait_count(2) and share.wait_count(2)
        assert [m.payload for m in hash_.snapshot()] == [b"r"]
        assert [m.payload for m in plus.snapshot()] == [b"t", b"marker"]
        assert [m.payload for m in share.snapshot()] == [b"t", b"marker"]
    finally:
        node.stop()
        shared.stop()
        hub.stop()


def test_a_filter_is_matched_level_by_level_as_mqtt_says(broker):
    link = MqttLink(client_id="link-matcher", settings=mqtt_settings(broker.port, HUB))
    routes = {name: (lambda _m: None) for name in ("a/+/c", "a/#", "#", "+/b/c", "a/b")}
    for topic_filter, handler in routes.items():
        link.route(topic_filter, handler)
    assert link.handlers_for("a/b/c") == (routes["a/+/c"], routes["a/#"], routes["#"], routes["+/b/c"])
    assert link.handlers_for("a") == (routes["a/#"], routes["#"])  # "#" matches the parent level too
    assert link.handlers_for("a/b") == (routes["a/#"], routes["#"], routes["a/b"])
    assert link.handlers_for("a/b/c/d") == (routes["a/#"], routes["#"])
    assert link.handlers_for("$SYS/b/c") == ()  # a wildcard first level never matches a $ topic


def test_a_route_added_later_gets_the_topics_already_seen(broker):
    link = MqttLink(client_id="link-late-route", settings=mqtt_settings(broker.port, HUB))
    first, later = (lambda _m: None), (lambda _m: None)
    link.route("x/+", first)
    assert link.handlers_for("x/y") == (first,)
    link.route("x/#", later)
    assert link.handlers_for("x/y") == (first, later)


def test_a_burst_of_qos1_messages_arrives_whole_and_in_order(broker):
    inbox = Collector()
    hub = connected_link(broker.port, HUB, "link-burst", {T.telemetry("node-a"): inbox})
    node = connected_link(broker.port, NODE_A, "link-burst-node")
    payloads = [f"{i:06d}".encode() * (1 + i % 50) for i in range(3000)]  # many packets a read
    try:
        infos = [node.publish(T.telemetry("node-a"), p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(30)
        assert inbox.wait_count(len(payloads), timeout=60)
        assert [m.payload for m in inbox.snapshot()] == payloads
    finally:
        node.stop()
        hub.stop()


def test_what_a_handler_and_another_thread_publish_goes_out(broker):
    answers = Collector()
    hub_box: list[MqttLink] = []

    def answer(message: Message) -> None:  # runs on the hub link's network thread
        hub_box[0].publish(T.ack("node-a"), b"from-handler:" + message.payload, qos=1)

    hub = connected_link(broker.port, HUB, "link-answers", {T.telemetry("node-a"): answer})
    hub_box.append(hub)
    node = connected_link(broker.port, NODE_A, "link-answers-node", {T.ack("node-a"): answers})
    try:
        node.publish_confirmed(T.telemetry("node-a"), b"1", qos=1)
        assert answers.wait_count(1)
        sent = threading.Thread(target=lambda: hub.publish(T.ack("node-a"), b"from-thread", qos=1))
        sent.start()
        sent.join()
        assert answers.wait_count(2)
        assert [m.payload for m in answers.snapshot()] == [b"from-handler:1", b"from-thread"]
    finally:
        node.stop()
        hub.stop()
