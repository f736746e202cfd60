import time
from tests.integration.test_audit_chain import *  # noqa
from tests.integration.test_audit_chain import _produce, _sealed_chain, _config
from greencredit.infra.audit_head import _group_less_consumer, partitions_of

def test_probe(stack, audit_topic):
    _produce(stack, audit_topic, _sealed_chain(audit_topic, 20))
    for p in (0, 2, 3):
        t = time.monotonic(); verify_partition(_config(stack), audit_topic, p, CODEC); print("verify", p, time.monotonic() - t)
    t = time.monotonic(); partitions_of(_config(stack), audit_topic); print("parts", time.monotonic() - t)
    t = time.monotonic()
    with _group_less_consumer(_config(stack)) as c:
        print("created", time.monotonic() - t)
    print("closed", time.monotonic() - t)
