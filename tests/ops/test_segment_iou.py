import numpy as np

from tfaction.ops import segment_iou as siou


def test_pairwise_union_and_hull():
    a = np.array([[0., 10.], [5., 5.]])
    b = np.array([[5., 15.], [0., 10.], [20., 30.], [5., 5.]])
    u = siou.pairwise_segment_iou(a, b)
    np.testing.assert_allclose(u[0, :3], [5 / 15, 1.0, 0.0])
    assert np.isnan(u[1, 3])  # 0/0, official NaN
    h = siou.pairwise_segment_iou(a, b, union="hull")
    np.testing.assert_allclose(h[0, :3], [5 / 15, 1.0, 0.0])
    np.testing.assert_allclose(siou.segment_iou([0, 10], b[:3]), u[0, :3])
