import time
from confluent_kafka import TopicPartition, OFFSET_BEGINNING
from tests.integration.test_audit_chain import *  # noqa
from tests.integration.test_audit_chain import _produce, _sealed_chain, _config
from greencredit.infra.audit_head import _group_less_consumer

def test_probe(stack, audit_topic):
    _produce(stack, audit_topic, _sealed_chain(audit_topic, 20))
    for extra in ({}, {"fetch.wait.max.ms": 10}):
        for p in (0, 2):
            t = time.monotonic()
            with _group_less_consumer({**_config(stack), **extra}) as c:
                c.assign([TopicPartition(audit_topic, p, OFFSET_BEGINNING)])
                while True:
                    m = c.poll(0.05)
                    if m is None:
                        continue
                    if m.error():
                        print(extra, p, "eof", round(time.monotonic() - t, 3)); break
            print(extra, p, "closed", round(time.monotonic() - t, 3))
