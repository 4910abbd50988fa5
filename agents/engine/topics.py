"""The starter topic bank: substantive, general topics for Indian mutual-fund investors.

The facts are deliberately general (no tax rates, no return figures): rates change with
budgets, and a stale number in a client message is worse than none. Segments: an empty
list means the topic suits every advisor.
"""

from __future__ import annotations

from .models import Topic, TopicSource

STARTER_TOPICS: list[dict] = [
    {
        "title": "SIP discipline: invest every month, whatever the market does",
        "category": "SIP",
        "summary": "A Systematic Investment Plan invests a fixed amount in a mutual fund at regular intervals, "
        "turning investing into a habit rather than a decision you have to make every month.",
        "key_points": [
            "A SIP can start with a small amount that fits your monthly budget.",
            "Staying invested through ups and downs matters more than the date you invest on.",
            "Automating the instalment removes the temptation to skip a month.",
        ],
        "segments": [],
    },
    {
        "title": "Rupee-cost averaging",
        "category": "SIP",
        "summary": "Investing a fixed amount regularly buys more units when prices are low and fewer when they are "
        "high, so your average cost per unit tends to smooth out over time.",
        "key_points": [
            "It takes away the pressure of trying to time the market.",
            "It does not prevent losses in a falling market; it spreads your entry points.",
            "It works best over long periods with uninterrupted instalments.",
        ],
        "segments": ["retail"],
    },
    {
        "title": "Step-up SIP: let your investments grow with your income",
        "category": "SIP",
        "summary": "Raising your SIP amount every year in line with your income can make a large difference to the "
        "final corpus compared with an SIP that stays flat for years.",
        "key_points": [
            "Even a modest yearly increase compounds into a noticeably larger corpus.",
            "Many fund houses let you set an automatic top-up when you register the SIP.",
            "Time the step-up with your annual increment so it does not strain the budget.",
        ],
        "segments": ["retail"],
    },
    {
        "title": "ELSS and Section 80C: tax saving with a three-year lock-in",
        "category": "Tax saving",
        "summary": "Equity Linked Savings Schemes are diversified equity funds that qualify for a deduction under "
        "Section 80C of the Income Tax Act if you file under the old tax regime.",
        "key_points": [
            "ELSS has a three-year lock-in, the shortest among the common Section 80C options.",
            "The Section 80C deduction applies only under the old tax regime, so check which regime suits you.",
            "Each SIP instalment in an ELSS is locked in for three years from its own date.",
        ],
        "segments": ["retail", "HNI"],
    },
    {
        "title": "Asset allocation: the decision that shapes your portfolio",
        "category": "Planning",
        "summary": "How you split money between equity, debt and other assets usually shapes your portfolio's ups "
        "and downs more than which individual fund you pick.",
        "key_points": [
            "Your mix should reflect your goals, time horizon and comfort with volatility.",
            "Rebalancing once a year brings the mix back to plan after markets move.",
            "As a goal comes closer, moving gradually to steadier assets protects what you have built.",
        ],
        "segments": [],
    },
    {
        "title": "Build an emergency fund before you invest",
        "category": "Planning",
        "summary": "An emergency fund means a job loss or a medical bill does not force you to sell long-term "
        "investments at a bad time.",
        "key_points": [
            "A common rule of thumb is three to six months of essential expenses.",
            "Keep it in easily accessible places such as a savings account or a liquid fund.",
            "Refill it after you use it, before resuming other goals.",
        ],
        "segments": ["retail"],
    },
    {
        "title": "Index funds or active funds?",
        "category": "Fund types",
        "summary": "Index funds copy a market index at low cost, while actively managed funds try to beat their "
        "benchmark; both can have a place in a portfolio.",
        "key_points": [
            "Index funds usually have lower expense ratios because there is no stock selection.",
            "An active fund earns its place by beating its benchmark after costs over long periods.",
            "Many investors combine a low-cost index core with a few chosen active funds.",
        ],
        "segments": [],
    },
    {
        "title": "Debt funds and interest rates",
        "category": "Debt",
        "summary": "Debt fund prices move opposite to interest rates: when rates fall, the bonds a fund already holds "
        "gain value, and when rates rise, they lose some.",
        "key_points": [
            "Longer-duration funds react more to interest-rate changes than short-duration ones.",
            "Match the fund's duration to when you will need the money.",
            "Credit quality matters too, so look at the ratings of the bonds the fund holds.",
        ],
        "segments": ["HNI"],
    },
    {
        "title": "Investing in Indian mutual funds as an NRI",
        "category": "NRI",
        "summary": "Non-resident Indians can invest in Indian mutual funds through NRE or NRO accounts, subject to "
        "FEMA rules and each fund house's KYC requirements.",
        "key_points": [
            "Money invested from an NRE account is generally repatriable; NRO funds are subject to annual limits.",
            "Some fund houses accept investors resident in the US or Canada only with extra declarations.",
            "Update your residential status and overseas address in your KYC when you move abroad.",
        ],
        "segments": ["NRI"],
    },
    {
        "title": "Planning for your child's higher education",
        "category": "Goals",
        "summary": "Education costs tend to rise faster than general prices, so starting early for a child's higher "
        "studies lets time and compounding do more of the work.",
        "key_points": [
            "Estimate the future cost of the course, not today's fee.",
            "For a goal many years away, equity-oriented funds may suit; shift gradually to debt as it nears.",
            "Keep the education fund separate so it is not used for something else.",
        ],
        "segments": [],
    },
    {
        "title": "How big should your retirement corpus be?",
        "category": "Retirement",
        "summary": "A retirement corpus has to pay for decades of expenses after your salary stops, so starting early "
        "and allowing for inflation are both essential.",
        "key_points": [
            "Estimate retirement expenses in future rupees, including rising healthcare costs.",
            "Starting ten years earlier can sharply reduce the monthly amount you need to invest.",
            "Plan how you will draw the money, not only how you will accumulate it.",
        ],
        "segments": [],
    },
    {
        "title": "STP and SWP: moving and drawing money systematically",
        "category": "Strategies",
        "summary": "A Systematic Transfer Plan moves money in instalments from one fund to another, and a Systematic "
        "Withdrawal Plan pays out a set amount at regular intervals from your investment.",
        "key_points": [
            "An STP from a liquid or debt fund into equity spreads a lump sum over time.",
            "An SWP can create a regular cash flow in retirement while the rest stays invested.",
            "Every transfer or withdrawal is a redemption and can have tax implications.",
        ],
        "segments": ["HNI"],
    },
    {
        "title": "Hybrid funds: equity and debt in one scheme",
        "category": "Fund types",
        "summary": "Hybrid funds hold a mix of equity and debt in a single scheme, a middle path between pure equity "
        "and pure debt funds.",
        "key_points": [
            "Categories range from conservative hybrid, mostly debt, to aggressive hybrid, mostly equity.",
            "Balanced advantage funds change their equity share with market conditions.",
            "The equity share drives both the volatility and the tax treatment, so check it.",
        ],
        "segments": [],
    },
    {
        "title": "How mutual fund gains are taxed",
        "category": "Tax",
        "summary": "Gains from mutual funds are taxed when you redeem or switch units, and the rules depend on the "
        "type of fund and how long you held the units.",
        "key_points": [
            "Equity-oriented and other funds follow different holding periods, so check the category first.",
            "Switching between schemes, even within one fund house, counts as a redemption.",
            "Tax rules change with budgets; review the current ones with your tax adviser before large redemptions.",
        ],
        "segments": ["HNI"],
    },
    {
        "title": "Staying calm when markets fall",
        "category": "Behaviour",
        "summary": "Markets rise and fall; stopping SIPs or selling in a panic after a drop often turns a temporary "
        "fall into a permanent loss and misses the recovery.",
        "key_points": [
            "Falls are a normal part of equity investing over any long period.",
            "Continuing SIPs during a fall buys more units at lower prices.",
            "Let your asset allocation, not the daily news, decide whether anything should change.",
        ],
        "segments": [],
    },
    {
        "title": "Diversification done right",
        "category": "Planning",
        "summary": "Spreading money across asset classes, sectors and fund styles limits the damage any single bad "
        "outcome can do to your portfolio.",
        "key_points": [
            "Owning many funds that hold the same stocks is not real diversification.",
            "Check the overlap between your funds' top holdings.",
            "A few well-chosen funds across categories are often enough.",
        ],
        "segments": [],
    },
    {
        "title": "Inflation: the silent cost of idle money",
        "category": "Planning",
        "summary": "Inflation steadily reduces what your money can buy, so savings that earn less than inflation lose "
        "value in real terms even when the balance grows.",
        "key_points": [
            "Plan goals in future prices, not today's.",
            "Long-term goals usually need some growth assets to stay ahead of rising prices.",
            "Look at the real return, after inflation and tax, not just the headline number.",
        ],
        "segments": [],
    },
    {
        "title": "Term insurance comes before investing",
        "category": "Protection",
        "summary": "If others depend on your income, a term insurance plan that protects them should come before "
        "long-term investing, and insurance and investment are best kept separate.",
        "key_points": [
            "Term insurance gives a large cover for a modest premium because it has no investment part.",
            "Cover is often estimated as a multiple of annual income plus outstanding loans.",
            "Health insurance for the family is the other essential before investing.",
        ],
        "segments": ["retail"],
    },
    {
        "title": "Keep your KYC and nominations up to date",
        "category": "Account care",
        "summary": "Up-to-date KYC and a registered nominee on every folio keep transactions smooth and spare your "
        "family paperwork later.",
        "key_points": [
            "Update your mobile number, email and address with the fund houses or your KYC agency.",
            "Add a nominee, or formally opt out, for each folio and demat account.",
            "Keep your PAN linked with Aadhaar so that your KYC stays valid.",
        ],
        "segments": [],
    },
    {
        "title": "Goal-based investing",
        "category": "Goals",
        "summary": "Tying each investment to a specific goal with an amount and a date makes it easier to choose the "
        "right fund and to stay invested.",
        "key_points": [
            "Goals under three years away generally suit lower-volatility options.",
            "Naming investments after goals makes it harder to dip into them.",
            "Review progress every year and adjust contributions if you fall behind.",
        ],
        "segments": [],
    },
    {
        "title": "The yearly portfolio review",
        "category": "Portfolio",
        "summary": "A yearly review checks whether your funds still suit your goals and brings your asset mix back to "
        "plan, with an eye on tax efficiency.",
        "key_points": [
            "Compare each fund with its benchmark and category over three to five years, not one.",
            "Rebalancing can trigger capital gains, so plan the timing with tax in mind.",
            "Consolidating scattered folios makes the portfolio easier to track.",
        ],
        "segments": ["HNI", "NRI"],
    },
]


def ensure_starter_topics() -> int:
    """Create the starter topics when the topic bank is empty; return how many were created."""
    # Only an empty bank is seeded: once people have edited or deleted topics, bringing the
    # starters back would undo their choices.
    if Topic.objects.exists():
        return 0
    created = Topic.objects.bulk_create(
        Topic(
            title=topic["title"],
            category=topic["category"],
            summary=topic["summary"],
            key_points=list(topic["key_points"]),
            segments=list(topic["segments"]),
            source=TopicSource.MANUAL,
            enabled=True,
        )
        for topic in STARTER_TOPICS
    )
    return len(created)
