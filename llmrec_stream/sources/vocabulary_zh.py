"""Chinese word lists for the synthetic world: the same eight categories as ``vocabulary.py``.

Written the way Chinese shop listings and reviews read (brand + selling points + product in
titles, short exclamations and 、/,/! in reviews), each category with its own brands, products,
selling points, materials, uses and review phrases, so a multilingual encoder places one
category's titles, descriptions and comments together. Category names are the English
generator's, so a ``mixed`` world can hold both languages' items under one ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CategoryVocabZh:
    """Word lists for one category; phrases read well in any template slot."""

    name: str
    label: str
    brands: tuple[str, ...]
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    materials: tuple[str, ...]
    uses: tuple[str, ...]
    praise: tuple[str, ...]
    complaints: tuple[str, ...]
    tags: tuple[str, ...]


def _split(text: str) -> tuple[str, ...]:
    # written with ASCII commas for the editor's sake; Chinese text uses the full-width one
    return tuple(part.strip().replace(",", "，") for part in text.split("|") if part.strip())


def _vocab(name: str, label: str, **fields: str) -> CategoryVocabZh:
    return CategoryVocabZh(name, label, **{k: _split(v) for k, v in fields.items()})


CATEGORIES_ZH: tuple[CategoryVocabZh, ...] = (
    _vocab(
        "running_shoes", "跑步鞋",
        brands="步云|迅驰|疾风者|跑客|飞羚|逐日",
        nouns="跑步鞋|马拉松跑鞋|越野跑鞋|竞速跑鞋|缓震慢跑鞋|轻量训练跑鞋",
        adjectives="轻量透气|缓震回弹|稳定支撑|防滑耐磨|碳板竞速|宽楦舒适",
        materials="飞织鞋面|超临界发泡中底|全掌碳板|耐磨橡胶大底|网布鞋面",
        uses="跑长距离|备战马拉松|日常慢跑|山地越野跑|节奏跑训练|操场间歇跑",
        praise="脚感软弹,跑十公里脚也不累|透气性很好,跑完脚底干爽|包裹性很好,这次跑出了个人最好成绩|"
        "雨天路面也抓地,不打滑|上脚就很跟脚,不用磨合",
        complaints="跑了五十公里鞋底就开胶了|鞋头太窄,跑步磨出了水泡|一个月中底就被踩扁了没弹性|"
        "鞋带老是跑着跑着就松开",
        tags="跑步|慢跑|马拉松|运动鞋|越野|健身",
    ),
    _vocab(
        "coffee", "咖啡",
        brands="山丘烘焙|晨光咖啡|豆仓|云南小粒|醇香坊|手冲研究所",
        nouns="咖啡豆|挂耳咖啡|冷萃咖啡|意式拼配豆|单品手冲豆|速溶黑咖啡",
        adjectives="深度烘焙|中浅烘焙|现烤新鲜|低酸顺滑|浓郁醇厚|花果香",
        materials="阿拉比卡咖啡豆|埃塞俄比亚耶加雪菲|云南保山豆|哥伦比亚生豆|巴西喜拉多豆",
        uses="做拿铁|手冲|早上提神|意式浓缩|冰美式|办公室冲泡",
        praise="香气很浓郁,有坚果和巧克力的味道|油脂丰富,做拿铁特别香|酸度柔和,回甘很明显|"
        "冲出来一点都不苦,口感很顺|每天早上一杯,整个上午都精神",
        complaints="豆子烘焙过头了,喝起来一股焦苦味|收到的时候已经不新鲜,没有香气|"
        "磨出来全是粉,手冲很容易堵|酸得发涩,完全喝不下去",
        tags="咖啡|咖啡豆|手冲|拿铁|提神|烘焙",
    ),
    _vocab(
        "skincare", "护肤品",
        brands="润颜|肌源|水之密语|青柠花园|素颜实验室|雪肌坊",
        nouns="保湿面霜|精华液|洁面乳|防晒霜|爽肤水|修护面膜",
        adjectives="温和无刺激|深层补水|控油清爽|修护舒缓|美白淡斑|敏感肌适用",
        materials="玻尿酸|烟酰胺|神经酰胺|积雪草提取物|角鲨烷",
        uses="干皮补水|敏感肌修护|夏天控油|日常防晒|夜间保养|换季泛红",
        praise="用了一周脸上就不干了,上妆很服帖|皮肤变得水润有光泽|痘痘和泛红都消下去了|"
        "质地清爽好吸收,一点都不油腻|敏感肌用着也不刺痛",
        complaints="涂完脸上爆了好多闭口|用了之后皮肤发红发痒|味道太刺鼻,而且搓泥|"
        "保湿效果很差,用完还是紧绷",
        tags="护肤|保湿|面霜|美妆|补水|敏感肌",
    ),
    _vocab(
        "scifi_books", "科幻小说",
        brands="星河出版社|未来文库|银河书局|光年文化|深空图书|奇点书社",
        nouns="科幻小说|太空歌剧长篇|硬科幻合集|赛博朋克小说|时间旅行小说|星际战争三部曲",
        adjectives="脑洞大开|设定宏大|情节紧凑|获奖|经典再版|烧脑",
        materials="精装典藏版|平装版|全新译本|插图珍藏本|简体中文版",
        uses="周末阅读|通勤路上看|睡前读|送给科幻迷|读书会讨论|假期长读",
        praise="世界观宏大,读完久久不能平静|情节环环相扣,一口气读到天亮|关于外星文明的设定太震撼了|"
        "人物塑造很立体,结局出乎意料|翻译流畅,宇宙的描写很有画面感",
        complaints="翻译生硬,很多句子读不通|后半部分节奏拖沓,读到一半就弃了|印刷模糊,还缺了好几页|"
        "剧情老套,太空战斗写得很无聊",
        tags="科幻|小说|图书|阅读|太空|文学",
    ),
    _vocab(
        "camping_gear", "露营装备",
        brands="野行者|山系|营地家|远足客|极地狐|森林营",
        nouns="露营帐篷|睡袋|防潮垫|登山背包|户外炉头|折叠露营椅",
        adjectives="防风防雨|超轻便携|速开免搭|四季通用|加厚保暖|大容量",
        materials="涤纶防水面料|铝合金帐杆|鹅绒填充|牛津布底|钛合金炉头",
        uses="野外露营|徒步登山|自驾游过夜|海边露营|雪地宿营|背包旅行",
        praise="下了一夜大雨,帐篷里一点都没漏|睡袋很暖,零下五度也睡得很香|两分钟就搭好了,特别省事|"
        "背了一整天登山也不压肩|收纳后很小,放进背包刚刚好",
        complaints="第一场暴雨帐篷就漏水了|帐杆第二次露营就断了|睡袋一点都不保暖,冻了一晚上|"
        "拉链卡住了,根本拉不开",
        tags="露营|户外|徒步|帐篷|登山|野营",
    ),
    _vocab(
        "cookware", "厨房刀具与锅具",
        brands="匠心厨房|锋刃|铁锅世家|厨乐|百炼|灶台先生",
        nouns="主厨刀|不粘炒锅|铸铁锅|砧板|切片刀|汤锅",
        adjectives="锋利耐用|不粘易洗|受热均匀|手工锻打|防锈|加厚锅底",
        materials="大马士革钢|德国不锈钢|麦饭石涂层|精铸生铁|实木手柄",
        uses="切菜切肉|爆炒|煎牛排|炖汤|日常做饭|片鱼",
        praise="刀很锋利,切番茄薄如纸|炒菜受热均匀,一点都不粘锅|煎牛排外焦里嫩,颜色很漂亮|"
        "拿在手里很平衡,切起来很顺手|用了半年刀刃还是很锋利",
        complaints="涂层用了两周就开始掉|刀刃切了几次就卷了|锅底受热不均,中间一下就糊了|"
        "洗完放一晚上就生锈了",
        tags="厨房|刀具|炒锅|烹饪|厨具|做饭",
    ),
    _vocab(
        "video_games", "电子游戏",
        brands="像素工坊|幻境游戏|霓虹互动|次元社|龙渊娱乐|星火工作室",
        nouns="开放世界游戏|角色扮演游戏|多人射击游戏|独立解谜游戏|赛车游戏|格斗游戏",
        adjectives="画面精美|剧情丰富|多人联机|高自由度|独立制作|年度大作",
        materials="实体光盘版|数字下载版|豪华收藏版|季票捆绑版|中文版",
        uses="和朋友联机|周末通宵|主机上玩|电脑上玩|打发时间|线上对战",
        praise="画面太美了,每一帧都能当壁纸|剧情很感人,通关的时候哭了|和朋友联机开黑特别开心|"
        "关卡设计很有创意,玩了一百个小时|手感流畅,帧数很稳",
        complaints="优化太差,一直掉帧闪退|服务器天天掉线,根本没法联机|氪金太严重,不充钱玩不下去|"
        "剧情几个小时就结束了,太短",
        tags="游戏|电玩|主机|联机|角色扮演|射击",
    ),
    _vocab(
        "gardening", "园艺",
        brands="绿手指|花田|根源园艺|青葱小院|种子铺|园丁之家",
        nouns="番茄种子|种植箱|修枝剪|营养土|浇水壶|堆肥桶",
        adjectives="有机|高发芽率|防锈省力|透气控水|缓释肥|非转基因",
        materials="防腐实木|镀锌钢板|泥炭土|高碳钢刀片|环保塑料",
        uses="阳台种菜|花坛种花|盆栽|修剪月季|育苗|院子堆肥",
        praise="番茄结了满满一枝,今年大丰收|种子四天就发芽了,苗长得很壮|剪月季一剪就断,切口很整齐|"
        "阳台种的青菜长得特别好|用了这个土,花开得又多又艳",
        complaints="一半的种子都没发芽|剪刀用了一季就生锈了|营养土里全是小飞虫还发霉|"
        "种植箱过了一个冬天就裂开了",
        tags="园艺|种植|花卉|种子|盆栽|阳台",
    ),
)

#: Review words shared by every category; they carry sentiment, not topic.
POSITIVE_OPENERS_ZH = _split("非常满意|太喜欢了|五星好评|超出预期|强烈推荐|买得很值|物超所值")
NEGATIVE_OPENERS_ZH = _split("非常失望|不会再买了|不值这个价|已经退货了|太让人失望了|不推荐")
