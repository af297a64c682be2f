import pytest
import torch

from campaign.groups import SU2, U1, U2

ALL_GROUPS = (U1, SU2, U2)


@pytest.fixture(params=ALL_GROUPS, ids=lambda g: g.name)
def group(request):
    return request.param


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
