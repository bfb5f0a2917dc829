"""The rank tests run one at a time on one worker only if pytest-xdist's `loadgroup` really groups them:
it appends the group to each test's id, which a pytest release can silently stop (pytest 9.2 did)."""

import os

import pytest


@pytest.mark.skipif(not os.environ.get("PYTEST_XDIST_WORKER"), reason="groups apply under pytest-xdist only")
def test_rank_tests_carry_their_group_in_their_id(request):
    assert request.node.nodeid.endswith("@ranks"), request.node.nodeid
