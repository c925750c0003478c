"""The versioned feature service that training and serving both read."""

from feast import FeatureService
from feature_views import item_features, user_features, user_item_features

ranker_v1 = FeatureService(
    name="ranker_v1",
    features=[user_features, item_features, user_item_features],
    description="Features of the LightGBM LambdaRank ranker, version 1.",
    owner="recops-ml@example.com",
    tags={"model": "recops-ranker"},
)
