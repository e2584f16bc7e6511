# my_sampler.py
import torch
from dans_kgc.sampling import NegativeSampler, register

@register
class HardestOfK(NegativeSampler):
    name = "hardest_of_k"
    def negative_weights(self, neg_scores):        # weight the uniform negatives by hardness
        return torch.nn.functional.one_hot(neg_scores.argmax(-1), neg_scores.shape[-1]).float()
