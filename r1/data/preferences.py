"""What an outcome reward model trains on (`stage=rm`): preference pairs (question, chosen,
rejected) for the Bradley-Terry objective, or labelled responses (question, response, 0/1) for
the pointwise one, from a JSONL file or from an offline generator.

The generator (`PreferenceTask`) poses the general requests of `GeneralTask` (the prompts that
DeepSeek-R1's last RL stage scores with a reward model; English and Chinese) and answers each
twice: once following every rule, once breaking exactly one of them. The rules are ones a small
reward model can learn:
- language: the answer is in the question's language;
- length: it has the number of sentences the request asks for (one for a friendly sentence or
  a tip, two for a description to a child or a reply to a friend);
- repetition: no sentence or phrase is repeated;
- empty: it is not empty;
- unsafe: it gives no harmful instruction (a small fixed list, e.g. mixing bleach and ammonia).
Good answers are assembled from per-topic phrase banks and several templates per request kind,
so no single string marks a good answer. The rule a rejected (or 0-labelled) answer breaks is
its `meta["violation"]`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1.data.datamodule import SPLIT_SEED
from r1.data.loaders import DataError, json_object, read_jsonl
from r1.data.problem import Problem
from r1.data.tasks import (
    GENERAL_REQUESTS,
    GENERAL_TOPICS,
    REQUEST_KINDS,
    SENTENCES_ASKED,
    Task,
    _check_language,
)

log = logging.getLogger(__name__)

OBJECTIVES = ("pairwise", "pointwise")
VIOLATIONS = ("language", "length", "repetition", "empty", "unsafe")
FOLLOWS_RULES = "none"  # meta["violation"] of a pointwise answer that breaks no rule


@dataclass(frozen=True)
class PreferencePair:
    """Two answers to one question, the first preferred. `question` is the bare user text
    (the data module renders it with the run's prompt template). meta["violation"]: the rule
    `rejected` breaks, when known."""

    question: str
    chosen: str
    rejected: str
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class LabelledResponse:
    """One answer to one question with its label: 1 it follows the rules (is safe), 0 not.
    meta["violation"]: the rule it breaks, FOLLOWS_RULES for label 1, when known."""

    question: str
    response: str
    label: int
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)


PreferenceRow = PreferencePair | LabelledResponse

# -- the phrase banks -------------------------------------------------------------------------

SEPARATORS = {"en": " ", "zh": ""}  # between sentences
PHRASE_SEPARATORS = {"en": ", ", "zh": "，"}

TEMPLATES = {
    "en": {
        "friendly": (
            "I think {praise}.",
            "Isn't it lovely that {praise}?",
            "Here is a happy thought: {praise}!",
            "Honestly, {praise}, and that always makes me smile.",
        ),
        "tip": (
            "Try to {tip}.",
            "A simple tip: {tip}.",
            "It really helps to {tip}.",
            "My advice is to {tip} whenever you can.",
        ),
        # the second sentence of a description to a child ({fact} is the first)
        "child": (
            "{other_fact}",
            "That is why so many people love {topic}.",
            "You can find out more about it with a grown-up.",
        ),
        # the first sentence of a reply (a friendly sentence or a tip follows)
        "reply": (
            "Thank you for asking about {topic}, my friend.",
            "How kind of you to ask about {topic}!",
            "Dear friend, thanks for your question about {topic}.",
        ),
        "unsafe": ("Try to {harm}.", "A simple tip: {harm}.", "Here is a fun idea: {harm}!"),
    },
    "zh": {
        "friendly": (
            "我觉得{praise}。",
            "想到{topic}，就觉得{praise}！",
            "说真的，{praise}，这总让我很开心。",
            "{praise}，多美好啊！",
        ),
        "tip": (
            "建议你{tip}。",
            "一个小建议：{tip}。",
            "不妨试着{tip}。",
            "记得{tip}，会很有帮助。",
        ),
        "child": ("{other_fact}", "所以很多人都喜欢{topic}。", "你可以和大人一起多了解它。"),
        "reply": (
            "谢谢你问起{topic}，我的朋友。",
            "你问到{topic}，真贴心！",
            "亲爱的朋友，谢谢你关心{topic}。",
        ),
        "unsafe": ("建议你{harm}。", "一个小建议：{harm}。", "有个好玩的主意：{harm}！"),
    },
}

# The same harmful instruction in each language.
HARMFUL_INSTRUCTIONS = {
    "en": (
        "mix bleach and ammonia to make a stronger cleaner",
        "leave a candle burning while you sleep",
        "touch a fallen power line to check if it is live",
        "drive home after a few drinks if you feel fine",
        "swim alone far from the shore at night",
        "give a small child your own medicine as a treat",
    ),
    "zh": (
        "把漂白剂和氨水混在一起做成更强的清洁剂",
        "睡觉时让蜡烛一直点着",
        "用手摸一摸掉在地上的电线看看有没有电",
        "喝了几杯酒觉得没事就自己开车回家",
        "晚上一个人游到离岸很远的地方",
        "把大人的药当糖果给小孩吃",
    ),
}


@dataclass(frozen=True)
class TopicBank:
    praise: tuple[str, ...]  # clauses for a friendly sentence, no end punctuation
    tips: tuple[str, ...]  # verb phrases for a tip, no end punctuation
    facts: tuple[str, ...]  # whole sentences a child understands


BANKS: dict[str, dict[str, TopicBank]] = {
    "en": {
        "the weather": TopicBank(
            (
                "a sunny morning can lift anyone's mood",
                "a cool breeze makes the whole day feel fresh",
                "every kind of weather has its own charm",
                "watching the clouds drift by is a small joy",
            ),
            (
                "check the forecast before you head out",
                "dress in layers when the weather keeps changing",
                "keep a light jacket in your bag",
                "drink extra water on hot days",
            ),
            (
                "The weather is what the air and the sky are doing outside.",
                "Sunshine warms the ground and helps plants grow.",
                "Clouds are made of tiny drops of water.",
                "Wind is air that moves from place to place.",
            ),
        ),
        "breakfast": TopicBank(
            (
                "a warm breakfast is a gentle way to start the day",
                "the smell of fresh toast makes any morning better",
                "sharing breakfast with family feels cozy",
                "a bowl of fruit in the morning tastes like sunshine",
            ),
            (
                "add some fruit to your morning meal",
                "prepare your oats the night before",
                "eat slowly and enjoy every bite",
                "keep breakfast simple on busy days",
            ),
            (
                "Breakfast is the first meal of the day.",
                "Eating in the morning gives your body energy to play.",
                "Many people eat eggs or bread for breakfast.",
                "Milk and fruit are tasty things to have in the morning.",
            ),
        ),
        "a walk in the park": TopicBank(
            (
                "a walk in the park clears the mind",
                "hearing birds sing along the path is delightful",
                "fresh air under the trees feels wonderful",
                "a slow stroll on the grass is always relaxing",
            ),
            (
                "wear comfortable shoes for the walk",
                "go early in the morning when it is quiet",
                "bring a small bottle of water",
                "leave your phone in your pocket and look around",
            ),
            (
                "A park is a green place where people play and rest.",
                "Parks often have trees and ponds and paths.",
                "Walking helps your legs grow strong.",
                "You might see ducks or squirrels in the park.",
            ),
        ),
        "reading": TopicBank(
            (
                "a good book can take you anywhere",
                "reading on a quiet afternoon is pure comfort",
                "every new story opens a little window on the world",
                "curling up with a novel feels wonderful",
            ),
            (
                "read a few pages before bed each night",
                "keep a book with you for spare moments",
                "choose stories that make you curious",
                "talk about what you read with a friend",
            ),
            (
                "Reading means looking at words and understanding them.",
                "Books can tell stories about faraway places.",
                "Some books have pictures on every page.",
                "The more you read the more words you learn.",
            ),
        ),
        "music": TopicBank(
            (
                "a favourite song can brighten a gray day",
                "music brings people together in a special way",
                "humming a tune makes chores feel lighter",
                "live music fills a room with warmth",
            ),
            (
                "make a playlist for calm evenings",
                "listen to a style you have never heard before",
                "practise an instrument for ten minutes a day",
                "sing along when nobody is watching",
            ),
            (
                "Music is made of sounds that go well together.",
                "People play music on drums and pianos and guitars.",
                "A song can be fast or slow.",
                "Clapping to a beat is a kind of music too.",
            ),
        ),
        "the sea": TopicBank(
            (
                "the sound of the waves is deeply calming",
                "the sea at sunset looks like a painting",
                "salty air by the shore feels refreshing",
                "watching the tide come in is peaceful",
            ),
            (
                "swim only where a lifeguard can see you",
                "wear sunscreen when you spend the day at the beach",
                "check the tide times before a walk on the shore",
                "take your litter home from the beach",
            ),
            (
                "The sea is a huge body of salty water.",
                "Many fish and whales live in the sea.",
                "Waves are made when wind blows across the water.",
                "The sea covers most of our planet.",
            ),
        ),
        "sleep": TopicBank(
            (
                "a good night's sleep makes everything feel possible",
                "waking up well rested is a wonderful feeling",
                "a quiet bedroom invites sweet dreams",
                "a short nap can refresh a tired mind",
            ),
            (
                "go to bed at the same time every night",
                "put screens away an hour before bed",
                "keep your bedroom cool and dark",
                "avoid coffee late in the day",
            ),
            (
                "Sleep is when your body rests and grows.",
                "Most children need about ten hours of sleep.",
                "When you sleep your brain sorts out the day.",
                "Dreams are stories your mind makes at night.",
            ),
        ),
        "a birthday": TopicBank(
            (
                "a birthday is a lovely reason to celebrate",
                "birthday candles make every face glow",
                "hearing friends sing on your birthday is heartwarming",
                "a birthday brings smiles and cake",
            ),
            (
                "write a short card to make a birthday personal",
                "plan a small surprise for the birthday person",
                "bake a simple cake together",
                "call an old friend on their birthday",
            ),
            (
                "A birthday is the day someone was born.",
                "People often eat cake and sing on birthdays.",
                "Each birthday you become one year older.",
                "Friends sometimes give presents on a birthday.",
            ),
        ),
        "trees": TopicBank(
            (
                "tall trees make any street more beautiful",
                "the shade of an old tree is a gift on a hot day",
                "autumn leaves turn trees into bright colours",
                "the rustle of leaves is soothing",
            ),
            (
                "plant a young tree in spring",
                "water new trees often during dry weeks",
                "sit under a tree and listen to the leaves",
                "learn the names of the trees near your home",
            ),
            (
                "Trees are big plants with wooden trunks.",
                "Leaves help trees make food from sunlight.",
                "Birds build nests in the branches of trees.",
                "Some trees live for hundreds of years.",
            ),
        ),
        "a rainy day": TopicBank(
            (
                "a rainy day is perfect for a cup of tea",
                "the sound of rain on the window is soothing",
                "rain makes the garden smell fresh",
                "jumping in puddles after the rain is fun",
            ),
            (
                "keep an umbrella by the door",
                "wear boots with a good grip on wet roads",
                "plan a board game for a rainy afternoon",
                "open a window a little to enjoy the fresh smell",
            ),
            (
                "Rain is water that falls from the clouds.",
                "Plants and animals need rain to drink.",
                "After rain you might see a rainbow.",
                "Puddles form when the ground is full of water.",
            ),
        ),
        "cooking": TopicBank(
            (
                "cooking for friends is a happy way to share",
                "the smell of soup on the stove feels like home",
                "trying a new recipe is a small adventure",
                "fresh herbs make a simple dish shine",
            ),
            (
                "read the whole recipe before you start",
                "keep your knife sharp and your board steady",
                "taste the food as you cook",
                "clean up as you go",
            ),
            (
                "Cooking means making food ready to eat.",
                "We use heat to cook food on a stove or in an oven.",
                "Grown-ups help keep the kitchen safe.",
                "Vegetables can be cooked in many ways.",
            ),
        ),
        "friendship": TopicBank(
            (
                "a true friend makes hard days easier",
                "laughing with friends is one of life's joys",
                "an old friendship feels like a warm blanket",
                "a kind message from a friend can make the whole day",
            ),
            (
                "send a friend a kind message today",
                "listen closely when a friend needs to talk",
                "keep the promises you make to friends",
                "make time to meet friends in person",
            ),
            (
                "A friend is someone who cares about you.",
                "Friends play together and share things.",
                "Good friends help each other.",
                "You can make new friends at school.",
            ),
        ),
    },
    "zh": {
        "天气": TopicBank(
            (
                "晴朗的早晨让人心情愉快",
                "微风吹来让一天都很清爽",
                "每一种天气都有自己的美",
                "看着白云慢慢飘过是一种小小的快乐",
            ),
            ("出门前看看天气预报", "天气多变时多穿一层衣服", "在包里放一件薄外套", "天热时多喝水"),
            (
                "天气就是外面的空气和天空每天的样子。",
                "阳光让大地变暖，帮助植物长大。",
                "云是由许多小水滴组成的。",
                "风是流动的空气。",
            ),
        ),
        "早餐": TopicBank(
            (
                "一顿热乎乎的早餐让一天有个好开始",
                "新鲜面包的香味让早晨更美好",
                "和家人一起吃早餐很温馨",
                "早上吃一碗水果很清甜",
            ),
            (
                "在早餐里加一些水果",
                "前一天晚上准备好燕麦",
                "慢慢吃并好好享受每一口",
                "忙的时候早餐也要简单吃一点",
            ),
            (
                "早餐是一天中的第一顿饭。",
                "早上吃饭能给身体带来玩耍的力气。",
                "很多人早餐吃鸡蛋或面包。",
                "牛奶和水果都是很好的早餐。",
            ),
        ),
        "公园散步": TopicBank(
            (
                "在公园散步能让头脑清醒",
                "一边走一边听小鸟唱歌很惬意",
                "树下的新鲜空气让人舒服",
                "在草地上慢慢走总是很放松",
            ),
            (
                "散步时穿一双舒服的鞋",
                "早上人少的时候去公园",
                "带一小瓶水",
                "把手机放进口袋多看看周围",
            ),
            (
                "公园是一个可以玩耍和休息的绿色地方。",
                "公园里常常有树、池塘和小路。",
                "走路能让你的腿变得有力。",
                "在公园里你可能会看到鸭子或松鼠。",
            ),
        ),
        "读书": TopicBank(
            (
                "一本好书能带你去任何地方",
                "安静的午后读书特别舒服",
                "每个新故事都像打开一扇小窗",
                "窝在沙发上看小说很美好",
            ),
            (
                "每天睡前读几页书",
                "随身带一本书在空闲时翻一翻",
                "选择让你好奇的故事",
                "和朋友聊聊你读过的书",
            ),
            (
                "读书就是看文字并理解它们。",
                "书里有很多关于远方的故事。",
                "有些书每一页都有图画。",
                "读得越多，认识的字就越多。",
            ),
        ),
        "音乐": TopicBank(
            (
                "一首喜欢的歌能照亮阴沉的一天",
                "音乐能把人们连在一起",
                "哼着小曲做家务也变轻松了",
                "现场音乐让整个房间都很温暖",
            ),
            (
                "为安静的晚上准备一个歌单",
                "听一种没听过的音乐",
                "每天练十分钟乐器",
                "没人的时候大声跟着唱",
            ),
            (
                "音乐是由好听的声音组成的。",
                "人们用鼓、钢琴和吉他演奏音乐。",
                "一首歌可以很快，也可以很慢。",
                "跟着节拍拍手也是一种音乐。",
            ),
        ),
        "大海": TopicBank(
            (
                "海浪的声音让人平静",
                "日落时的大海像一幅画",
                "海边带着咸味的空气很清新",
                "看着潮水涨起来很安宁",
            ),
            (
                "只在救生员看得见的地方游泳",
                "在海边玩一整天要涂防晒霜",
                "去海边散步前查一下潮汐时间",
                "把垃圾从海滩带走",
            ),
            (
                "大海是一大片咸咸的水。",
                "很多鱼和鲸鱼住在大海里。",
                "风吹过水面就会形成海浪。",
                "大海覆盖了地球的大部分。",
            ),
        ),
        "睡眠": TopicBank(
            (
                "睡个好觉让一切都变得可能",
                "醒来时精神饱满的感觉很棒",
                "安静的卧室让人做个好梦",
                "小睡一会儿能让疲惫的大脑恢复",
            ),
            (
                "每天晚上在同一时间上床",
                "睡前一小时放下屏幕",
                "让卧室保持凉爽和黑暗",
                "下午以后不要喝咖啡",
            ),
            (
                "睡觉的时候身体在休息和长大。",
                "小朋友每天需要睡大约十个小时。",
                "睡觉时大脑会整理白天的事情。",
                "梦是大脑在夜里编的故事。",
            ),
        ),
        "生日": TopicBank(
            (
                "生日是庆祝的好理由",
                "生日蜡烛让每张脸都闪闪发光",
                "听朋友们唱生日歌很暖心",
                "生日总是带来笑容和蛋糕",
            ),
            (
                "写一张小卡片让生日更有心意",
                "为过生日的人准备一个小惊喜",
                "一起做一个简单的蛋糕",
                "在老朋友生日那天给他打个电话",
            ),
            (
                "生日是一个人出生的那一天。",
                "过生日时人们常常吃蛋糕、唱歌。",
                "每过一个生日你就长大一岁。",
                "朋友们有时会在生日送礼物。",
            ),
        ),
        "树木": TopicBank(
            (
                "高大的树让街道更美丽",
                "老树的树荫是炎热夏天的礼物",
                "秋天的树叶把树木变得五彩缤纷",
                "树叶沙沙的声音让人安心",
            ),
            (
                "春天种一棵小树",
                "干旱的时候多给新树浇水",
                "坐在树下听听树叶的声音",
                "认识一下家附近的树叫什么名字",
            ),
            (
                "树是有木头树干的大植物。",
                "树叶能用阳光为树制造食物。",
                "小鸟在树枝上筑巢。",
                "有些树能活几百年。",
            ),
        ),
        "雨天": TopicBank(
            (
                "下雨天最适合喝一杯茶",
                "雨打在窗户上的声音很安宁",
                "雨后的花园闻起来很清新",
                "雨后踩水坑很好玩",
            ),
            (
                "在门口放一把雨伞",
                "路面湿滑时穿防滑的靴子",
                "为下雨的下午准备一个桌游",
                "把窗户开一点闻闻雨的清香",
            ),
            (
                "雨是从云里落下来的水。",
                "植物和动物都需要雨水。",
                "雨后你可能会看到彩虹。",
                "地面装满水的时候就会出现水坑。",
            ),
        ),
        "做饭": TopicBank(
            (
                "为朋友做饭是一种快乐的分享",
                "炉子上汤的香味让人觉得像家",
                "尝试新菜谱是一次小小的冒险",
                "新鲜的香草让简单的菜更好吃",
            ),
            (
                "开始前先把菜谱读完",
                "保持刀锋利并把砧板放稳",
                "一边做一边尝味道",
                "边做饭边收拾",
            ),
            (
                "做饭就是把食物变得可以吃。",
                "我们用炉子或烤箱加热食物。",
                "大人会帮忙让厨房保持安全。",
                "蔬菜可以有很多种做法。",
            ),
        ),
        "友谊": TopicBank(
            (
                "真正的朋友让难过的日子好过一些",
                "和朋友一起笑是人生的乐事",
                "老朋友的情谊像一条温暖的毯子",
                "朋友的一句问候能让一整天都变好",
            ),
            (
                "今天给朋友发一条温暖的消息",
                "朋友想说话时认真听",
                "遵守对朋友的承诺",
                "抽时间和朋友见面",
            ),
            (
                "朋友是关心你的人。",
                "朋友们一起玩，一起分享。",
                "好朋友会互相帮助。",
                "你可以在学校交到新朋友。",
            ),
        ),
    },
}
# The same topic in the other language: a wrong-language answer keeps to the question's topic.
TRANSLATIONS = {
    "the weather": "天气",
    "breakfast": "早餐",
    "a walk in the park": "公园散步",
    "reading": "读书",
    "music": "音乐",
    "the sea": "大海",
    "sleep": "睡眠",
    "a birthday": "生日",
    "trees": "树木",
    "a rainy day": "雨天",
    "cooking": "做饭",
    "friendship": "友谊",
}
TRANSLATIONS.update({zh: en for en, zh in list(TRANSLATIONS.items())})
OTHER_LANGUAGE = {"en": "zh", "zh": "en"}


# -- the generator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One general request: its text, language, the kind of answer it asks for, its topic."""

    question: str
    language: str
    kind: str
    topic: str


def general_requests(language: str) -> list[Request]:
    """Every question `GeneralTask(language)` can pose, in a fixed order."""
    languages = ("en", "zh") if _check_language(language) == "mixed" else (language,)
    requests = []
    for lang in languages:
        for template in GENERAL_REQUESTS[lang]:
            if template not in REQUEST_KINDS:
                raise ValueError(f"general request {template!r} has no kind in REQUEST_KINDS")
            for topic in GENERAL_TOPICS[lang]:
                requests.append(
                    Request(template.format(topic=topic), lang, REQUEST_KINDS[template], topic)
                )
    return requests


def _check_violations(violations: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(violations)
    unknown = [v for v in chosen if v not in VIOLATIONS]
    if not chosen or unknown:
        raise DataError(
            f"data.source.violations={list(chosen)}: must be a non-empty list of "
            f"{', '.join(VIOLATIONS)}"
        )
    return chosen


class PreferenceTask:
    """The offline generator: for each general request a rule-following answer and, broken
    from the same topic, one that breaks a rule drawn from `violations`. Deterministic in
    the random generator it is given."""

    def __init__(self, language: str = "en", violations: Sequence[str] = VIOLATIONS):
        self.language = _check_language(language)
        self.violations = _check_violations(violations)
        self.requests = general_requests(language)

    # the answers, as lists of sentences

    def _one_sentence(self, kind: str, language: str, topic: str, rng: random.Random) -> str:
        bank = BANKS[language][topic]
        template = rng.choice(TEMPLATES[language][kind])
        return template.format(
            praise=rng.choice(bank.praise), tip=rng.choice(bank.tips), topic=topic
        )

    def good_sentences(self, kind: str, language: str, topic: str, rng: random.Random) -> list[str]:
        """A rule-following answer of `kind` about `topic` in `language`, sentence by sentence."""
        if kind in ("friendly", "tip"):
            return [self._one_sentence(kind, language, topic, rng)]
        if kind == "child":
            fact, other_fact = rng.sample(BANKS[language][topic].facts, 2)
            follow = rng.choice(TEMPLATES[language]["child"])
            return [fact, follow.format(other_fact=other_fact, topic=topic)]
        opening = rng.choice(TEMPLATES[language]["reply"]).format(topic=topic)
        return [opening, self._one_sentence(rng.choice(("friendly", "tip")), language, topic, rng)]

    def good(self, request: Request, rng: random.Random) -> str:
        sentences = self.good_sentences(request.kind, request.language, request.topic, rng)
        return SEPARATORS[request.language].join(sentences)

    def broken(self, request: Request, violation: str, rng: random.Random) -> str:
        """An answer to `request` that breaks `violation` and, as far as it can, no other rule."""
        language, kind, topic = request.language, request.kind, request.topic
        separator = SEPARATORS[language]
        if violation == "empty":
            return ""
        if violation == "language":
            other = OTHER_LANGUAGE[language]
            sentences = self.good_sentences(kind, other, TRANSLATIONS[topic], rng)
            return SEPARATORS[other].join(sentences)
        if violation == "unsafe":
            harm = rng.choice(HARMFUL_INSTRUCTIONS[language])
            unsafe = rng.choice(TEMPLATES[language]["unsafe"]).format(harm=harm)
            if SENTENCES_ASKED[kind] == 1:
                return unsafe
            return separator.join([self.good_sentences(kind, language, topic, rng)[0], unsafe])
        if violation == "repetition":
            if SENTENCES_ASKED[kind] == 1:  # one sentence, a phrase in it said 3 or 4 times
                bank = BANKS[language][topic]
                times = rng.choice((3, 4))
                phrase = rng.choice(bank.praise if kind == "friendly" else bank.tips)
                repeated = PHRASE_SEPARATORS[language].join([phrase] * times)
                template = rng.choice(TEMPLATES[language][kind])
                return template.format(praise=repeated, tip=repeated, topic=topic)
            sentence = rng.choice(self.good_sentences(kind, language, topic, rng))
            return separator.join([sentence, sentence])  # two sentences, both the same
        if violation == "length":
            sentences = self.good_sentences(kind, language, topic, rng)
            if SENTENCES_ASKED[kind] == 2 and rng.random() < 0.5:
                return sentences[0]  # one sentence where two were asked for
            extra = [f for f in BANKS[language][topic].facts if f not in sentences]
            extra = [f for f in extra if not any(f in s for s in sentences)]
            return separator.join(
                sentences + rng.sample(extra, min(len(extra), rng.choice((2, 3))))
            )
        raise ValueError(f"unknown violation {violation!r}; valid: {', '.join(VIOLATIONS)}")

    def pair(self, request: Request, rng: random.Random) -> PreferencePair:
        violation = rng.choice(self.violations)
        return PreferencePair(
            question=request.question,
            chosen=self.good(request, rng),
            rejected=self.broken(request, violation, rng),
            meta={"violation": violation, "language": request.language, "kind": request.kind},
        )

    def labelled(self, request: Request, rng: random.Random) -> LabelledResponse:
        """Half of them follow the rules (label 1), half break one (label 0)."""
        meta = {"language": request.language, "kind": request.kind}
        if rng.random() < 0.5:
            response = self.good(request, rng)
            return LabelledResponse(
                request.question, response, 1, {**meta, "violation": FOLLOWS_RULES}
            )
        violation = rng.choice(self.violations)
        response = self.broken(request, violation, rng)
        return LabelledResponse(request.question, response, 0, {**meta, "violation": violation})

    def generate(
        self, requests: Sequence[Request], n: int, seed: int, objective: str = "pairwise"
    ) -> list[PreferenceRow]:
        """`n` rows on questions drawn from `requests`, deterministic in `seed`."""
        rng = random.Random(seed)
        make = self.pair if objective == "pairwise" else self.labelled
        return [make(rng.choice(requests), rng) for _ in range(n)]

    def split(
        self, objective: str, num_train: int, num_val: int, val_fraction: float, seed: int
    ) -> tuple[list[PreferenceRow], list[PreferenceRow]]:
        """(training, held-out) rows on disjoint questions: a fixed `val_fraction` of the
        questions is held out, and the held-out rows are the same for every run seed."""
        held_out = set(held_out_questions([r.question for r in self.requests], val_fraction))
        train = [r for r in self.requests if r.question not in held_out]
        val = [r for r in self.requests if r.question in held_out]
        return (
            self.generate(train, num_train, seed, objective),
            self.generate(val, num_val, SPLIT_SEED, objective),
        )


class GeneralAnswerTask(Task):
    """General requests answered by the rules, without a chain of thought: the non-reasoning
    part of DeepSeek-R1's stage-3 SFT data (data=sft_mixture). Each problem's response is in
    `meta["completion"]`, which SFT trains on verbatim; it has no gold answer (`task="general"`)."""

    def __init__(self, language: str = "en"):
        self.language = _check_language(language)
        self.requests = general_requests(language)
        self.answers = PreferenceTask(language)

    def sample(self, rng: random.Random) -> Problem:
        request = rng.choice(self.requests)
        return Problem(
            question=request.question,
            answer="",
            task="general",
            meta={"language": request.language, "completion": self.answers.good(request, rng)},
        )


def held_out_questions(questions: Sequence[str], val_fraction: float) -> list[str]:
    """The questions held out for validation: a fixed shuffle of the distinct ones, the first
    `val_fraction` of them (at least one, never all)."""
    distinct = sorted(set(questions))
    if len(distinct) < 2:
        raise DataError(
            f"{len(distinct)} distinct question(s); a train/validation split by question "
            "needs at least 2"
        )
    random.Random(SPLIT_SEED).shuffle(distinct)
    count = min(max(1, round(len(distinct) * val_fraction)), len(distinct) - 1)
    return distinct[:count]


# -- JSONL files ------------------------------------------------------------------------------

FIELDS = {
    "pairwise": ("prompt", "chosen", "rejected"),
    "pointwise": ("prompt", "response", "label"),
}


def _string(row: Mapping[str, Any], name: str, where: str, objective: str) -> str:
    if name not in row:
        raise DataError(
            f"{where}: field {name!r} is missing (fields present: {', '.join(row) or 'none'}); "
            f"a {objective} row has {', '.join(FIELDS[objective])}"
        )
    value = row[name]
    if not isinstance(value, str):
        raise DataError(
            f"{where}: field {name!r} must be a string, got {type(value).__name__} {value!r:.80}"
        )
    return value


def _label(row: Mapping[str, Any], where: str) -> int:
    value = row.get("label")
    if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
        return int(value)
    raise DataError(f"{where}: field 'label' must be 0 or 1, got {value!r:.80}")


def _parse_row(line: str, where: str, objective: str) -> PreferenceRow:
    row = json_object(line, where)
    question = _string(row, "prompt", where, objective)
    if not question.strip():
        raise DataError(f"{where}: field 'prompt' is empty")
    meta = {k: v for k, v in row.items() if k not in FIELDS[objective]}
    if objective == "pairwise":
        chosen = _string(row, "chosen", where, objective)
        return PreferencePair(question, chosen, _string(row, "rejected", where, objective), meta)
    response = _string(row, "response", where, objective)
    if "label" not in row:
        _string(row, "label", where, objective)  # raises: the field is missing
    return LabelledResponse(question, response, _label(row, where), meta)


def read_preference_rows(path: str | os.PathLike[str], objective: str) -> list[PreferenceRow]:
    """Rows of a JSONL file: {"prompt", "chosen", "rejected"} per line (pairwise) or
    {"prompt", "response", "label" 0/1} (pointwise); `prompt` is the bare user question. Other
    keys (e.g. "violation") go to meta. A bad line raises DataError naming it."""
    if objective not in OBJECTIVES:
        raise DataError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    return read_jsonl(path, lambda line, where: _parse_row(line, where, objective), "rows")


class PreferenceSource:
    """Where `stage=rm`'s rows come from: the JSONL file at `path`, or, with no path, the
    offline generator (`PreferenceTask(language, violations)`; these two settings are the
    generator's)."""

    def __init__(
        self,
        path: str | None = None,
        language: str = "en",
        violations: Sequence[str] = VIOLATIONS,
    ):
        self.path = path
        self.language = _check_language(language)
        self.task = None if path else PreferenceTask(language, violations)

    def split(
        self, objective: str, num_train: int, num_val: int, val_fraction: float, seed: int
    ) -> tuple[list[PreferenceRow], list[PreferenceRow]]:
        """(training, held-out) rows on disjoint questions. The generator draws `num_train`
        and `num_val` rows; a file gives all of its rows, split by question."""
        if self.task is not None:
            return self.task.split(objective, num_train, num_val, val_fraction, seed)
        rows = read_preference_rows(self.path, objective)
        try:
            held_out = set(held_out_questions([r.question for r in rows], val_fraction))
        except DataError as err:
            raise DataError(f"{self.path}: {err}") from None
        train = [r for r in rows if r.question not in held_out]
        val = [r for r in rows if r.question in held_out]
        log.info(
            "%s: %d training and %d held-out rows (%d held-out questions)",
            self.path,
            len(train),
            len(val),
            len(held_out),
        )
        return train, val
