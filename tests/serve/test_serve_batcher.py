"""The micro-batcher: coalescing, limits, order of results, failures and draining on stop."""

import asyncio
import threading

import numpy as np
import pytest

from zerotune.serve import MicroBatcher


class Model:
    """Doubles its input and records each call's batch size; can be made slow or failing."""

    def __init__(self, delay=0.0, fail_on=None):
        self.sizes = []
        self.delay = delay
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, x):
        self.gate.wait(5)
        if self.delay:
            threading.Event().wait(self.delay)
        self.sizes.append(len(x))
        if self.fail_on is not None and (x == self.fail_on).any():
            raise RuntimeError("model failed")
        return (x * 2, x.sum(axis=1))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def requests(n, rows=1):
    return [np.full((rows, 3), i, dtype=np.float32) for i in range(n)]


def test_concurrent_requests_share_model_calls_and_get_their_own_rows():
    model = Model()

    async def main():
        b = MicroBatcher(model, max_batch=64, max_wait_ms=5)
        await b.start()
        model.gate.clear()  # hold the model so requests pile up behind the first call
        first = asyncio.create_task(b.submit(requests(1)[0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(b.submit(x)) for x in requests(40)[1:]]
        await asyncio.sleep(0.05)
        model.gate.set()
        outs = await asyncio.gather(first, *rest)
        await b.stop()
        return b, outs

    b, outs = run(main())
    for i, (doubled, sums) in enumerate(outs):
        assert doubled.shape == (1, 3) and (doubled == 2 * i).all() and sums[0] == 3 * i
    assert sum(model.sizes) == 40 and model.sizes[0] == 1 and model.sizes[1] == 39
    assert (b.batches, b.examples) == (2, 40)


def test_max_batch_is_respected_and_large_requests_run_alone():
    model = Model()

    async def main():
        b = MicroBatcher(model, max_batch=8, max_wait_ms=0)
        await b.start()
        model.gate.clear()
        tasks = [asyncio.create_task(b.submit(x)) for x in requests(20, rows=3)]
        big = asyncio.create_task(b.submit(np.ones((30, 3), np.float32)))
        await asyncio.sleep(0.05)
        model.gate.set()
        outs = await asyncio.gather(*tasks, big)
        await b.stop()
        return outs

    outs = run(main())
    assert max(model.sizes[:-1]) <= 8 and 30 in model.sizes and sum(model.sizes) == 90
    assert all(o[0].shape == (3, 3) for o in outs[:-1]) and outs[-1][0].shape == (30, 3)


def test_max_batch_one_means_one_call_per_request():
    model = Model()

    async def main():
        b = MicroBatcher(model, max_batch=1, max_wait_ms=0)
        await b.start()
        await asyncio.gather(*(b.submit(x) for x in requests(10)))
        await b.stop()

    run(main())
    assert model.sizes == [1] * 10


def test_a_failing_call_fails_its_requests_only():
    model = Model(fail_on=3.0)

    async def main():
        b = MicroBatcher(model, max_batch=1)
        await b.start()
        results = await asyncio.gather(*(b.submit(x) for x in requests(6)), return_exceptions=True)
        after = await b.submit(requests(1)[0])  # still serving
        await b.stop()
        return results, after

    results, after = run(main())
    assert isinstance(results[3], RuntimeError)
    assert all(isinstance(r, tuple) for i, r in enumerate(results) if i != 3)
    assert (after[0] == 0).all()


def test_a_failing_shared_call_fails_only_the_request_that_breaks_it():
    model = Model(fail_on=3.0)

    async def main():
        b = MicroBatcher(model, max_batch=64, max_wait_ms=1000)
        await b.start()
        results = await asyncio.gather(*(b.submit(x) for x in requests(6)), return_exceptions=True)
        await b.stop()
        return results

    results = run(main())
    assert isinstance(results[3], RuntimeError)
    assert [r[0][0, 0] for i, r in enumerate(results) if i != 3] == [0, 2, 4, 8, 10]
    assert model.sizes == [6, 1, 1, 1, 1, 1, 1]  # the shared call, then each request alone


def test_stop_answers_everything_already_queued():
    model = Model(delay=0.01)

    async def main():
        b = MicroBatcher(model, max_batch=4, max_wait_ms=0)
        await b.start()
        tasks = [asyncio.create_task(b.submit(x)) for x in requests(25)]
        await asyncio.sleep(0)  # all queued, few answered
        await b.stop()
        return [t.result() for t in tasks]

    outs = run(main())
    assert [int(o[0][0, 0]) for o in outs] == [2 * i for i in range(25)]
    assert sum(model.sizes) == 25


def test_submit_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="not running"):
        run(MicroBatcher(Model()).submit(requests(1)[0]))
